//! The messages of Node's `@socket.io/redis-adapter` (8.x, `createAdapter`):
//! channel names, broadcasts, requests and responses, byte for byte.
//!
//! - Broadcasts: a msgpack array `[uid, packet, opts]` on `key#nsp#`, or on
//!   `key#nsp#room#` when exactly one room is targeted.
//! - Requests on `key-request#nsp#`, responses on `key-response#nsp#` (or
//!   on the requester's own `key-response#nsp#uid#`). Requests and
//!   responses are JSON, except a broadcast with acks (type 7) and each ack
//!   answer (type 9), which are msgpack maps. A receiver tells them apart by
//!   the first byte: `{` is JSON.

use bytes::Bytes;
use rmpv::Value as Msgpack;
use serde_json::{json, Value as Json};
use socketio::adapter::{BroadcastOptions, Packet, PacketKind, Payload, Room, Str};

use crate::codec::{self, CodecError};

/// The request types (Node's `RequestType`).
pub mod kind {
    /// Legacy: the ids of the sockets in some rooms (never sent by 8.x).
    pub const SOCKETS: u64 = 0;
    /// Every room with a socket in it.
    pub const ALL_ROOMS: u64 = 1;
    /// Selected sockets join rooms.
    pub const REMOTE_JOIN: u64 = 2;
    /// Selected sockets leave rooms.
    pub const REMOTE_LEAVE: u64 = 3;
    /// Selected sockets disconnect.
    pub const REMOTE_DISCONNECT: u64 = 4;
    /// Snapshots of the selected sockets.
    pub const REMOTE_FETCH: u64 = 5;
    /// A server-side event (and its answer).
    pub const SERVER_SIDE_EMIT: u64 = 6;
    /// A broadcast whose recipients answer with acks.
    pub const BROADCAST: u64 = 7;
    /// How many sockets a server sent a broadcast with acks to.
    pub const BROADCAST_CLIENT_COUNT: u64 = 8;
    /// One socket's ack to a broadcast.
    pub const BROADCAST_ACK: u64 = 9;
}

/// The channels of one namespace's adapter.
#[derive(Debug, Clone)]
pub struct Channels {
    /// `key#nsp#`: broadcasts to no room or several, and the prefix of the
    /// one-room channels.
    pub broadcast: String,
    /// `key-request#nsp#`.
    pub request: String,
    /// `key-response#nsp#`.
    pub response: String,
    /// `key-response#nsp#uid#`: responses meant for this adapter only.
    pub own_response: String,
}

impl Channels {
    /// The channels of namespace `nsp` under prefix `key`, for adapter `uid`.
    pub fn new(key: &str, nsp: &str, uid: &str) -> Channels {
        Channels {
            broadcast: format!("{key}#{nsp}#"),
            request: format!("{key}-request#{nsp}#"),
            response: format!("{key}-response#{nsp}#"),
            own_response: format!("{key}-response#{nsp}#{uid}#"),
        }
    }

    /// The pattern every broadcast channel of the namespace matches, glob
    /// characters of the prefix escaped (Node leaves them as they are,
    /// which only matters for names that contain them).
    pub fn broadcast_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.broadcast.len() + 2);
        for c in self.broadcast.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }

    /// Where a broadcast to `opts` is published.
    pub fn broadcast_channel(&self, opts: &BroadcastOptions) -> String {
        match opts.rooms.as_slice() {
            [room] => format!("{}{}#", self.broadcast, room.as_str()),
            _ => self.broadcast.clone(),
        }
    }

    /// The room a broadcast channel names (`None` for the namespace-wide
    /// one, and for channels of other namespaces).
    pub fn room_of<'a>(&self, channel: &'a str) -> Option<&'a str> {
        let rest = channel.strip_prefix(self.broadcast.as_str())?;
        rest.strip_suffix('#')
    }

    /// The channel a response for `requester` goes to: its own with
    /// `specific` (Node's `publishOnSpecificResponseChannel`), else the
    /// shared one.
    pub fn response_for(&self, specific: bool, requester: &str) -> String {
        if specific {
            format!("{}{requester}#", self.response)
        } else {
            self.response.clone()
        }
    }
}

/// A broadcast, as carried between servers.
#[derive(Debug)]
pub struct Broadcast {
    /// The sending adapter.
    pub uid: String,
    /// The EVENT packet, arguments and attachments.
    pub packet: Packet,
    /// Which sockets, and how.
    pub opts: BroadcastOptions,
}

/// `{type: 2, data, nsp}`: the packet object inside broadcasts.
fn packet_object(packet: &Packet) -> Result<Msgpack, CodecError> {
    let data = match &packet.data {
        Some(json) => codec::args_to_msgpack(json, &packet.attachments)?,
        None => Msgpack::Array(Vec::new()),
    };
    Ok(Msgpack::Map(vec![
        ("type".into(), Msgpack::from(2)),
        ("data".into(), data),
        ("nsp".into(), Msgpack::from(packet.nsp.as_str())),
    ]))
}

/// `{rooms, except, flags}` as msgpack.
fn opts_msgpack(opts: &BroadcastOptions) -> Msgpack {
    let rooms =
        |rooms: &[Room]| Msgpack::Array(rooms.iter().map(|r| Msgpack::from(r.as_str())).collect());
    let mut flags = Vec::new();
    if opts.flags.volatile {
        flags.push(("volatile".into(), Msgpack::Boolean(true)));
    }
    // Node writes the flag only when it was set; unset means compressed.
    if !opts.flags.compress {
        flags.push(("compress".into(), Msgpack::Boolean(false)));
    }
    if let Some(timeout) = opts.flags.timeout {
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        flags.push(("timeout".into(), Msgpack::from(millis)));
    }
    Msgpack::Map(vec![
        ("rooms".into(), rooms(&opts.rooms)),
        ("except".into(), rooms(&opts.except)),
        ("flags".into(), Msgpack::Map(flags)),
    ])
}

/// `{rooms, except}` as JSON (requests carry no flags).
pub fn opts_json(opts: &BroadcastOptions) -> Json {
    json!({ "rooms": names(&opts.rooms), "except": names(&opts.except) })
}

fn names(rooms: &[Room]) -> Vec<&str> {
    rooms.iter().map(|r| r.as_str()).collect()
}

/// Encodes a broadcast: `[uid, packet, opts]`.
pub fn encode_broadcast(
    uid: &str,
    packet: &Packet,
    opts: &BroadcastOptions,
) -> Result<Vec<u8>, CodecError> {
    let message = Msgpack::Array(vec![
        Msgpack::from(uid),
        packet_object(packet)?,
        opts_msgpack(opts),
    ]);
    Ok(codec::encode(&message))
}

/// Decodes a broadcast. Its packet's namespace is what the sender wrote
/// (`/` when absent); the caller checks it is its own.
pub fn decode_broadcast(bytes: &[u8]) -> Result<Broadcast, CodecError> {
    let Msgpack::Array(mut parts) = codec::decode(bytes)? else {
        return Err(CodecError::Shape("broadcast is not an array"));
    };
    if parts.len() != 3 {
        return Err(CodecError::Shape("broadcast is not [uid, packet, opts]"));
    }
    let opts = opts_from_json(&codec::to_json(
        parts.pop().unwrap_or(Msgpack::Nil),
        &mut Vec::new(),
    )?)?;
    let packet = packet_from_msgpack(parts.pop().unwrap_or(Msgpack::Nil))?;
    let uid = match parts.pop() {
        Some(Msgpack::String(uid)) => uid.into_str().unwrap_or_default(),
        _ => return Err(CodecError::Shape("broadcast uid is not a string")),
    };
    Ok(Broadcast { uid, packet, opts })
}

/// The packet object of a broadcast (msgpack) as an EVENT packet.
fn packet_from_msgpack(value: Msgpack) -> Result<Packet, CodecError> {
    let mut attachments = Vec::new();
    let Json::Object(mut object) = codec::to_json(value, &mut attachments)? else {
        return Err(CodecError::Shape("packet is not a map"));
    };
    match object.get("type").and_then(Json::as_u64) {
        Some(2 | 5) => {}
        _ => return Err(CodecError::Shape("packet is not an EVENT")),
    }
    let nsp = match object.remove("nsp") {
        Some(Json::String(nsp)) => nsp,
        _ => "/".to_owned(),
    };
    let data = match object.remove("data") {
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

/// Room names from a JSON array (numbers, which Node allows as room
/// names, as their decimal text).
pub(crate) fn rooms_from_json(value: Option<&Json>) -> Vec<Room> {
    let Some(Json::Array(items)) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Json::String(s) => Some(Room::from(s.as_str())),
            Json::Number(n) => Some(Room::from(n.to_string())),
            _ => None,
        })
        .collect()
}

/// `{rooms, except, flags?}` from JSON.
pub fn opts_from_json(value: &Json) -> Result<BroadcastOptions, CodecError> {
    let Json::Object(object) = value else {
        return Err(CodecError::Shape("opts is not a map"));
    };
    let mut opts = BroadcastOptions::new(
        rooms_from_json(object.get("rooms")),
        rooms_from_json(object.get("except")),
    );
    if let Some(Json::Object(flags)) = object.get("flags") {
        opts.flags.volatile = flags.get("volatile") == Some(&Json::Bool(true));
        opts.flags.compress = flags.get("compress") != Some(&Json::Bool(false));
        opts.flags.timeout = flags
            .get("timeout")
            .and_then(Json::as_f64)
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .map(|ms| std::time::Duration::from_millis(ms as u64));
    }
    Ok(opts)
}

/// A request another server published (or this one: the caller skips its
/// own by `uid`).
#[derive(Debug)]
pub enum Request {
    /// Type 1.
    AllRooms {
        /// The requester.
        uid: String,
        /// Echoed in the response.
        request_id: String,
    },
    /// Type 5.
    Fetch {
        /// The requester.
        uid: String,
        /// Echoed in the response.
        request_id: String,
        /// Which sockets.
        opts: BroadcastOptions,
    },
    /// Types 2 and 3.
    Rooms {
        /// The requester.
        uid: String,
        /// Join (true) or leave.
        join: bool,
        /// Which sockets.
        opts: BroadcastOptions,
        /// The rooms to join or leave.
        rooms: Vec<Room>,
    },
    /// Type 4.
    Disconnect {
        /// The requester.
        uid: String,
        /// Which sockets.
        opts: BroadcastOptions,
        /// Close their whole connections too.
        close: bool,
    },
    /// Type 6.
    ServerSideEmit {
        /// The requester.
        uid: String,
        /// Present when the requester waits for answers.
        request_id: Option<String>,
        /// The event name.
        event: String,
        /// Its arguments.
        args: Payload,
    },
    /// Type 7.
    BroadcastWithAck {
        /// The requester.
        uid: String,
        /// Echoed in the count and in every ack.
        request_id: String,
        /// The EVENT.
        packet: Packet,
        /// Which sockets, and the ack timeout.
        opts: BroadcastOptions,
    },
}

impl Request {
    /// The requesting adapter.
    pub fn uid(&self) -> &str {
        match self {
            Request::AllRooms { uid, .. }
            | Request::Fetch { uid, .. }
            | Request::Rooms { uid, .. }
            | Request::Disconnect { uid, .. }
            | Request::ServerSideEmit { uid, .. }
            | Request::BroadcastWithAck { uid, .. } => uid,
        }
    }
}

fn string(object: &serde_json::Map<String, Json>, key: &'static str) -> Result<String, CodecError> {
    match object.get(key) {
        Some(Json::String(s)) => Ok(s.clone()),
        _ => Err(CodecError::Shape(key)),
    }
}

/// Decodes a request, JSON or msgpack.
pub fn decode_request(bytes: &[u8]) -> Result<Request, CodecError> {
    if bytes.first() != Some(&b'{') {
        return decode_broadcast_with_ack(bytes);
    }
    let Json::Object(object) = serde_json::from_slice::<Json>(bytes)? else {
        return Err(CodecError::Shape("request is not an object"));
    };
    // Node's emitter (@socket.io/redis-emitter) writes no uid in its
    // join, leave and disconnect requests; Node's adapter applies them
    // (`undefined` is never its own uid), and so does this one.
    let uid = match object.get("uid") {
        None => String::new(),
        Some(_) => string(&object, "uid")?,
    };
    let opts = || opts_from_json(object.get("opts").unwrap_or(&Json::Null));
    Ok(match object.get("type").and_then(Json::as_u64) {
        Some(kind::ALL_ROOMS) => Request::AllRooms {
            uid,
            request_id: string(&object, "requestId")?,
        },
        Some(kind::REMOTE_FETCH) => Request::Fetch {
            uid,
            request_id: string(&object, "requestId")?,
            opts: opts()?,
        },
        Some(k @ (kind::REMOTE_JOIN | kind::REMOTE_LEAVE)) => Request::Rooms {
            uid,
            join: k == kind::REMOTE_JOIN,
            opts: opts()?,
            rooms: rooms_from_json(object.get("rooms")),
        },
        Some(kind::REMOTE_DISCONNECT) => Request::Disconnect {
            uid,
            opts: opts()?,
            close: object.get("close") == Some(&Json::Bool(true)),
        },
        Some(kind::SERVER_SIDE_EMIT) => {
            let Some(Json::Array(data)) = object.get("data") else {
                return Err(CodecError::Shape("server-side emit without data"));
            };
            let Some(Json::String(event)) = data.first() else {
                return Err(CodecError::Shape("server-side emit without an event name"));
            };
            let args = Json::Array(data[1..].to_vec()).to_string();
            Request::ServerSideEmit {
                uid,
                request_id: object
                    .get("requestId")
                    .and_then(Json::as_str)
                    .map(str::to_owned),
                event: event.clone(),
                args: Payload::from_raw(Str::from(args), Vec::new()),
            }
        }
        _ => return Err(CodecError::Shape("unknown request type")),
    })
}

/// A broadcast with acks (type 7, msgpack).
fn decode_broadcast_with_ack(bytes: &[u8]) -> Result<Request, CodecError> {
    let Msgpack::Map(entries) = codec::decode(bytes)? else {
        return Err(CodecError::Shape("request is not a map"));
    };
    let (mut uid, mut request_id, mut packet, mut opts, mut kind) = (None, None, None, None, None);
    for (key, value) in entries {
        match key.as_str() {
            Some("uid") => uid = value.as_str().map(str::to_owned),
            Some("requestId") => request_id = value.as_str().map(str::to_owned),
            Some("type") => kind = value.as_u64(),
            Some("packet") => packet = Some(packet_from_msgpack(value)?),
            Some("opts") => opts = Some(opts_from_json(&codec::to_json(value, &mut Vec::new())?)?),
            _ => {}
        }
    }
    match (kind, uid, request_id, packet, opts) {
        (Some(kind::BROADCAST), Some(uid), Some(request_id), Some(packet), Some(opts)) => {
            Ok(Request::BroadcastWithAck {
                uid,
                request_id,
                packet,
                opts,
            })
        }
        _ => Err(CodecError::Shape("incomplete broadcast with acks")),
    }
}

/// Type 1, JSON.
pub fn all_rooms_request(uid: &str, request_id: &str) -> Vec<u8> {
    json!({ "uid": uid, "requestId": request_id, "type": kind::ALL_ROOMS })
        .to_string()
        .into_bytes()
}

/// Type 5, JSON.
pub fn fetch_request(uid: &str, request_id: &str, opts: &BroadcastOptions) -> Vec<u8> {
    json!({ "uid": uid, "requestId": request_id, "type": kind::REMOTE_FETCH, "opts": opts_json(opts) })
        .to_string()
        .into_bytes()
}

/// Types 2 and 3, JSON.
pub fn rooms_request(uid: &str, join: bool, opts: &BroadcastOptions, rooms: &[Room]) -> Vec<u8> {
    let kind = if join {
        kind::REMOTE_JOIN
    } else {
        kind::REMOTE_LEAVE
    };
    let rooms: Vec<&str> = rooms.iter().map(|r| r.as_str()).collect();
    json!({ "uid": uid, "type": kind, "opts": opts_json(opts), "rooms": rooms })
        .to_string()
        .into_bytes()
}

/// Type 4, JSON.
pub fn disconnect_request(uid: &str, opts: &BroadcastOptions, close: bool) -> Vec<u8> {
    json!({ "uid": uid, "type": kind::REMOTE_DISCONNECT, "opts": opts_json(opts), "close": close })
        .to_string()
        .into_bytes()
}

/// Type 6, JSON: `data` is `[event, ...args]`; binary arguments become
/// Node's JSON form of a `Buffer`, as Node's adapter sends them.
pub fn server_side_emit_request(
    uid: &str,
    request_id: Option<&str>,
    event: &str,
    args: &Payload,
) -> Result<Vec<u8>, CodecError> {
    let Json::Array(args_list) = serde_json::from_str::<Json>(args.args_json())? else {
        return Err(CodecError::Shape("arguments are not an array"));
    };
    let mut data = vec![Json::from(event)];
    data.extend(
        args_list
            .iter()
            .map(|arg| codec::buffers_as_json(arg, args.attachments())),
    );
    let mut request = json!({ "uid": uid, "type": kind::SERVER_SIDE_EMIT, "data": data });
    if let Some(id) = request_id {
        request["requestId"] = Json::from(id);
    }
    Ok(request.to_string().into_bytes())
}

/// Type 7, msgpack.
pub fn broadcast_with_ack_request(
    uid: &str,
    request_id: &str,
    packet: &Packet,
    opts: &BroadcastOptions,
) -> Result<Vec<u8>, CodecError> {
    let message = Msgpack::Map(vec![
        ("uid".into(), Msgpack::from(uid)),
        ("requestId".into(), Msgpack::from(request_id)),
        ("type".into(), Msgpack::from(kind::BROADCAST)),
        ("packet".into(), packet_object(packet)?),
        ("opts".into(), opts_msgpack(opts)),
    ]);
    Ok(codec::encode(&message))
}

/// A socket in a fetch response: Node's `RemoteSocketDetails`.
#[derive(Debug, Clone)]
pub struct SocketDetails {
    /// Its id.
    pub id: String,
    /// Node's `socket.handshake` (headers, query, auth, address, …).
    pub handshake: Json,
    /// Its rooms, its own id's included.
    pub rooms: Vec<Room>,
    /// Its `data`.
    pub data: Json,
}

/// A response to one of this adapter's requests.
#[derive(Debug)]
pub enum Response {
    /// To type 1.
    Rooms {
        /// The request.
        request_id: String,
        /// The responder's rooms.
        rooms: Vec<Room>,
    },
    /// To type 5.
    Sockets {
        /// The request.
        request_id: String,
        /// The responder's selected sockets.
        sockets: Vec<SocketDetails>,
    },
    /// To type 6: the first argument of the answer.
    ServerSideEmit {
        /// The request.
        request_id: String,
        /// The answer's first argument (a one-element argument list).
        answer: Payload,
    },
    /// Type 8.
    ClientCount {
        /// The request.
        request_id: String,
        /// How many of the responder's sockets were sent the broadcast.
        count: u64,
    },
    /// Type 9: the first argument of one socket's ack.
    Ack {
        /// The request.
        request_id: String,
        /// The ack's first argument.
        answer: Payload,
        /// The socket that answered, when the responder says (ours do;
        /// Node's adapter does not).
        sid: Option<String>,
    },
}

impl Response {
    /// The request it answers.
    pub fn request_id(&self) -> &str {
        match self {
            Response::Rooms { request_id, .. }
            | Response::Sockets { request_id, .. }
            | Response::ServerSideEmit { request_id, .. }
            | Response::ClientCount { request_id, .. }
            | Response::Ack { request_id, .. } => request_id,
        }
    }
}

/// Decodes a response, JSON or msgpack.
pub fn decode_response(bytes: &[u8]) -> Result<Response, CodecError> {
    if bytes.first() != Some(&b'{') {
        return decode_ack(bytes);
    }
    let Json::Object(mut object) = serde_json::from_slice::<Json>(bytes)? else {
        return Err(CodecError::Shape("response is not an object"));
    };
    let request_id = string(&object, "requestId")?;
    match object.get("type").and_then(Json::as_u64) {
        Some(kind::SERVER_SIDE_EMIT) => {
            let first = object.remove("data").unwrap_or(Json::Null);
            let args = Json::Array(vec![first]).to_string();
            return Ok(Response::ServerSideEmit {
                request_id,
                answer: Payload::from_raw(Str::from(args), Vec::new()),
            });
        }
        Some(kind::BROADCAST_CLIENT_COUNT) => {
            let count = object
                .get("clientCount")
                .and_then(Json::as_u64)
                .unwrap_or(0);
            return Ok(Response::ClientCount { request_id, count });
        }
        _ => {}
    }
    if let Some(Json::Array(sockets)) = object.remove("sockets") {
        let sockets = sockets_from_json(sockets, &[]);
        return Ok(Response::Sockets {
            request_id,
            sockets,
        });
    }
    if object.contains_key("rooms") {
        let rooms = rooms_from_json(object.get("rooms"));
        return Ok(Response::Rooms { request_id, rooms });
    }
    Err(CodecError::Shape("unknown response"))
}

/// The sockets of a fetch response; entries without an id are skipped.
/// Binary data (the attachments placeholders refer to) becomes Node's JSON
/// form of a `Buffer`.
pub(crate) fn sockets_from_json(sockets: Vec<Json>, attachments: &[Bytes]) -> Vec<SocketDetails> {
    let field = |socket: &mut serde_json::Map<String, Json>, key| match socket.remove(key) {
        Some(value) if !attachments.is_empty() => codec::buffers_as_json(&value, attachments),
        Some(value) => value,
        None => Json::Null,
    };
    sockets
        .into_iter()
        .filter_map(|socket| {
            let Json::Object(mut socket) = socket else {
                return None;
            };
            Some(SocketDetails {
                id: socket.get("id")?.as_str()?.to_owned(),
                rooms: rooms_from_json(socket.get("rooms")),
                handshake: field(&mut socket, "handshake"),
                data: field(&mut socket, "data"),
            })
        })
        .collect()
}

/// One socket's ack (type 9, msgpack).
fn decode_ack(bytes: &[u8]) -> Result<Response, CodecError> {
    let Msgpack::Map(entries) = codec::decode(bytes)? else {
        return Err(CodecError::Shape("response is not a map"));
    };
    let (mut kind, mut request_id, mut answer, mut sid) = (None, None, None, None);
    let mut attachments = Vec::new();
    for (key, value) in entries {
        match key.as_str() {
            Some("type") => kind = value.as_u64(),
            Some("requestId") => request_id = value.as_str().map(str::to_owned),
            Some("sid") => sid = value.as_str().map(str::to_owned),
            Some("packet") => answer = Some(codec::to_json(value, &mut attachments)?),
            _ => {}
        }
    }
    match (kind, request_id) {
        (Some(kind::BROADCAST_ACK), Some(request_id)) => {
            let args = Json::Array(vec![answer.unwrap_or(Json::Null)]).to_string();
            Ok(Response::Ack {
                request_id,
                answer: Payload::from_raw(Str::from(args), attachments),
                sid,
            })
        }
        _ => Err(CodecError::Shape("unknown msgpack response")),
    }
}

/// The answer to type 1, JSON.
pub fn rooms_response(request_id: &str, rooms: &[Room]) -> Vec<u8> {
    let rooms: Vec<&str> = rooms.iter().map(|r| r.as_str()).collect();
    json!({ "requestId": request_id, "rooms": rooms })
        .to_string()
        .into_bytes()
}

/// The answer to type 5, JSON (binary in `data` becomes Node's `Buffer`
/// JSON, as Node's adapter writes it).
pub fn sockets_response(request_id: &str, sockets: &[SocketDetails]) -> Vec<u8> {
    json!({ "requestId": request_id, "sockets": sockets_json(sockets) })
        .to_string()
        .into_bytes()
}

/// Sockets as a fetch answer lists them (Node's `RemoteSocketDetails`).
pub(crate) fn sockets_json(sockets: &[SocketDetails]) -> Vec<Json> {
    sockets
        .iter()
        .map(|s| {
            let rooms: Vec<&str> = s.rooms.iter().map(|r| r.as_str()).collect();
            json!({ "id": s.id, "handshake": s.handshake, "rooms": rooms, "data": s.data })
        })
        .collect()
}

/// The answer to type 6: the first argument of the handler's answer.
pub fn server_side_emit_response(request_id: &str, answer: &Payload) -> Vec<u8> {
    let first = serde_json::from_str::<Json>(answer.args_json())
        .ok()
        .and_then(|args| args.get(0).cloned())
        .map(|arg| codec::buffers_as_json(&arg, answer.attachments()))
        .unwrap_or(Json::Null);
    json!({ "type": kind::SERVER_SIDE_EMIT, "requestId": request_id, "data": first })
        .to_string()
        .into_bytes()
}

/// Type 8, JSON.
pub fn client_count_response(request_id: &str, count: usize) -> Vec<u8> {
    json!({ "type": kind::BROADCAST_CLIENT_COUNT, "requestId": request_id, "clientCount": count })
        .to_string()
        .into_bytes()
}

/// Type 9, msgpack: the ack's first argument, plus the answering socket's
/// id (an extra key Node's adapter ignores).
pub fn ack_response(request_id: &str, sid: &str, answer: &Payload) -> Result<Vec<u8>, CodecError> {
    let args = codec::args_to_msgpack(answer.args_json(), answer.attachments())?;
    let first = match args {
        Msgpack::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        _ => Msgpack::Nil,
    };
    let message = Msgpack::Map(vec![
        ("type".into(), Msgpack::from(kind::BROADCAST_ACK)),
        ("requestId".into(), Msgpack::from(request_id)),
        ("packet".into(), first),
        ("sid".into(), Msgpack::from(sid)),
    ]);
    Ok(codec::encode(&message))
}

/// Bytes as they arrived, for logging what could not be decoded.
pub fn preview(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(64)];
    String::from_utf8_lossy(shown).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::hex;
    use bytes::Bytes;

    // Captured from Node's adapter: io.emit("hello", "world", 42).
    const NODE_BROADCAST: &str = "93a675325239446d83a47479706502a46461746193a568656c6c6fa5776f726c642aa36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380";

    #[test]
    fn a_node_broadcast_decodes_and_ours_encodes_the_same_bytes() {
        let broadcast = decode_broadcast(&hex(NODE_BROADCAST)).unwrap();
        assert_eq!(broadcast.uid, "u2R9Dm");
        assert_eq!(broadcast.packet.nsp.as_str(), "/");
        assert_eq!(
            broadcast.packet.data.as_deref(),
            Some(r#"["hello","world",42]"#)
        );
        assert_eq!(broadcast.opts, BroadcastOptions::all());
        let ours = encode_broadcast("u2R9Dm", &broadcast.packet, &broadcast.opts).unwrap();
        assert_eq!(ours, hex(NODE_BROADCAST));
    }

    #[test]
    fn a_binary_broadcast_keeps_its_bytes() {
        // io.emit("bin", Buffer.from([1, 2, 3])) from Node.
        let node = "93a675325239446d83a47479706502a46461746192a362696ec403010203a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380";
        let broadcast = decode_broadcast(&hex(node)).unwrap();
        assert_eq!(
            broadcast.packet.data.as_deref(),
            Some(r#"["bin",{"_placeholder":true,"num":0}]"#)
        );
        assert_eq!(
            broadcast.packet.attachments,
            vec![Bytes::from_static(&[1, 2, 3])]
        );
        let ours = encode_broadcast("u2R9Dm", &broadcast.packet, &broadcast.opts).unwrap();
        assert_eq!(ours, hex(node));
    }

    #[test]
    fn one_room_goes_to_its_own_channel() {
        let channels = Channels::new("socket.io", "/", "abc");
        let one = BroadcastOptions::new(vec![Room::from("room1")], Vec::new());
        assert_eq!(channels.broadcast_channel(&one), "socket.io#/#room1#");
        let two = BroadcastOptions::new(vec![Room::from("a"), Room::from("b")], Vec::new());
        assert_eq!(channels.broadcast_channel(&two), "socket.io#/#");
        assert_eq!(channels.room_of("socket.io#/#room1#"), Some("room1"));
        assert_eq!(channels.room_of("socket.io#/#"), None);
        assert_eq!(channels.room_of("socket.io#/admin#"), None);
        assert_eq!(
            Channels::new("k*", "/", "u").broadcast_pattern(),
            "k\\*#/#*"
        );
    }

    #[test]
    fn node_requests_decode() {
        let fetch =
            br#"{"uid":"u2R9Dm","requestId":"HWUPAP","type":5,"opts":{"rooms":["r"],"except":[]}}"#;
        let Request::Fetch {
            request_id, opts, ..
        } = decode_request(fetch).unwrap()
        else {
            panic!("not a fetch");
        };
        assert_eq!(request_id, "HWUPAP");
        assert_eq!(opts.rooms, vec![Room::from("r")]);
        let emit = br#"{"uid":"u2R9Dm","requestId":"2b-2P0","type":6,"data":["ping2",7]}"#;
        let Request::ServerSideEmit {
            event,
            args,
            request_id,
            ..
        } = decode_request(emit).unwrap()
        else {
            panic!("not a server-side emit");
        };
        assert_eq!(
            (event.as_str(), args.args_json(), request_id.as_deref()),
            ("ping2", "[7]", Some("2b-2P0"))
        );
        // io.timeout(2000).emitWithAck("ackev", 1) from Node.
        let with_ack = "85a3756964a675325239446da9726571756573744964a6514b74554936a47479706507a67061636b657483a47479706502a46461746192a561636b657601a36e7370a12fa46f70747383a5726f6f6d7390a665786365707490a5666c61677381a774696d656f7574cd07d0";
        let Request::BroadcastWithAck {
            request_id,
            packet,
            opts,
            ..
        } = decode_request(&hex(with_ack)).unwrap()
        else {
            panic!("not a broadcast with acks");
        };
        assert_eq!(request_id, "QKtUI6");
        assert_eq!(packet.data.as_deref(), Some(r#"["ackev",1]"#));
        assert_eq!(opts.flags.timeout, Some(std::time::Duration::from_secs(2)));
        let ours = broadcast_with_ack_request("u2R9Dm", "QKtUI6", &packet, &opts).unwrap();
        assert_eq!(ours, hex(with_ack));
    }

    #[test]
    fn responses_decode() {
        let ack = hex("83a47479706509a9726571756573744964a6514b74554936a67061636b6574ab61636b2d66726f6d2d6332");
        let Response::Ack {
            request_id,
            answer,
            sid,
        } = decode_response(&ack).unwrap()
        else {
            panic!("not an ack");
        };
        assert_eq!(
            (request_id.as_str(), answer.args_json(), sid),
            ("QKtUI6", r#"["ack-from-c2"]"#, None)
        );
        let count = br#"{"type":8,"requestId":"QKtUI6","clientCount":1}"#;
        assert!(matches!(
            decode_response(count).unwrap(),
            Response::ClientCount { count: 1, .. }
        ));
        let rooms = br#"{"requestId":"H7qzTO","rooms":["a","b"]}"#;
        assert!(
            matches!(decode_response(rooms).unwrap(), Response::Rooms { rooms, .. } if rooms.len() == 2)
        );
        let answer = br#"{"type":6,"requestId":"x","data":{"pong":7}}"#;
        assert!(
            matches!(decode_response(answer).unwrap(), Response::ServerSideEmit { answer, .. } if answer.args_json() == r#"[{"pong":7}]"#)
        );
        let ours = ack_response(
            "r",
            "sid1",
            &Payload::from_raw(Str::from("[1,2]"), Vec::new()),
        )
        .unwrap();
        let Response::Ack { answer, sid, .. } = decode_response(&ours).unwrap() else {
            panic!("not an ack");
        };
        assert_eq!((answer.args_json(), sid.as_deref()), ("[1]", Some("sid1")));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"{",
            b"{}",
            b"\x93\x01\x02\x03",
            b"\xc1",
            b"[1]",
            b"\x85",
        ] {
            assert!(decode_broadcast(bytes).is_err());
            assert!(decode_request(bytes).is_err());
            assert!(decode_response(bytes).is_err());
        }
    }
}
