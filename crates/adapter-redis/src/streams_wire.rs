//! The format of Node's [`@socket.io/redis-streams-adapter`](https://github.com/socketio/socket.io-redis-streams-adapter)
//! 0.3: the messages of the sharded format ([`crate::sharded_wire`], both
//! are Node's `ClusterAdapter`), carried two ways.
//!
//! - Broadcasts without acks and room or disconnect requests are entries
//!   of a Redis stream (`XADD socket.io MAXLEN ~ 10000 * uid … nsp … type …
//!   data …`), which every server reads (`XREAD`) and which keeps them for
//!   connection state recovery: an entry's id is the offset its events
//!   carry. `type` is the message type in decimal; `data` is the message's
//!   data as JSON text or, when it carries binary, base64 of its msgpack.
//! - Everything that needs no keeping (broadcasts with acks, fetches,
//!   server-side events, and every answer) is published, msgpack, on
//!   `prefix#nsp#` or the requester's `prefix#nsp#uid#`.
//!
//! Sessions of sockets that left are kept under `sio:session:<pid>` as
//! base64 of the msgpack of `{sid, pid, rooms, data}`, for the recovery's
//! `max_disconnection_duration`.

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value as Json};
use socketio::adapter::{BroadcastOptions, Room, Session, Sid, Str};

use crate::codec::{self, CodecError};
use crate::sharded_wire::{self, kind, Envelope};

/// Node's `hashCode`: Java's `String.hashCode` over UTF-16 code units, in
/// 32-bit signed arithmetic.
pub fn hash_code(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The stream a namespace's messages go to: `name` with one stream,
/// otherwise `name-i` with `i = hashCode(nsp) % count`. As in Node, `i`
/// keeps the hash's sign (JavaScript's `%`): a namespace whose hash is
/// negative goes to a stream such as `socket.io--1`, which Node's servers
/// never read; ours do (see [`streams_to_read`]).
pub fn stream_name(name: &str, count: usize, nsp: &str) -> String {
    if count <= 1 {
        return name.to_owned();
    }
    let count = i32::try_from(count).unwrap_or(i32::MAX);
    format!("{name}-{}", hash_code(nsp) % count)
}

/// Every stream a server reads: `name`, or `name-i` for `i` in
/// `-(count-1)..=count-1` (the negative ones for namespaces with a
/// negative hash, which Node writes to and does not read).
pub fn streams_to_read(name: &str, count: usize) -> Vec<String> {
    if count <= 1 {
        return vec![name.to_owned()];
    }
    let last = i32::try_from(count - 1).unwrap_or(i32::MAX - 1);
    (-last..=last).map(|i| format!("{name}-{i}")).collect()
}

/// An envelope of the sharded format (JSON, or msgpack with binary) read
/// back as JSON with its attachments.
fn parse(envelope: &[u8]) -> Result<(serde_json::Map<String, Json>, Vec<Bytes>), CodecError> {
    let mut attachments = Vec::new();
    let value = if envelope.first() == Some(&b'{') {
        serde_json::from_slice::<Json>(envelope)?
    } else {
        codec::to_json(codec::decode(envelope)?, &mut attachments)?
    };
    match value {
        Json::Object(object) => Ok((object, attachments)),
        _ => Err(CodecError::Shape("message is not an object")),
    }
}

/// Where a message of the sharded format goes with the Streams format.
#[derive(Debug)]
pub enum Route {
    /// To the stream, as an entry of these fields (kept: broadcasts
    /// without acks, joins, leaves, disconnections).
    Stream(Vec<(&'static str, String)>),
    /// To pub/sub, as this msgpack (Node's `isEphemeral`: broadcasts with
    /// acks, fetches, server-side events; and every answer).
    PubSub(Vec<u8>),
}

/// Where `envelope` (the sharded format's JSON, or msgpack with binary)
/// goes, in the form it goes there; read once.
pub fn route(envelope: Vec<u8>) -> Result<Route, CodecError> {
    let (mut object, attachments) = parse(&envelope)?;
    let kind = object.get("type").and_then(Json::as_u64).unwrap_or(0);
    let with_ack = object
        .get("data")
        .and_then(|data| data.get("requestId"))
        .is_some();
    let kept = match kind {
        kind::BROADCAST => !with_ack,
        kind::SOCKETS_JOIN | kind::SOCKETS_LEAVE | kind::DISCONNECT_SOCKETS => true,
        _ => false,
    };
    if !kept {
        return Ok(Route::PubSub(if envelope.first() == Some(&b'{') {
            codec::encode(&codec::to_msgpack(&Json::Object(object), &[])?)
        } else {
            envelope
        }));
    }
    let text = |object: &serde_json::Map<String, Json>, key| match object.get(key) {
        Some(Json::String(text)) => Ok(text.clone()),
        _ => Err(CodecError::Shape(key)),
    };
    let (uid, nsp) = (text(&object, "uid")?, text(&object, "nsp")?);
    let data = object.remove("data");
    Ok(Route::Stream(entry(
        &uid,
        &nsp,
        kind,
        data.as_ref(),
        &attachments,
    )?))
}

/// A stream entry's fields, in the order Node writes them: `uid`, `nsp`,
/// `type` (decimal), and `data` as JSON text or, when it carries binary
/// (`attachments` its placeholders refer to), base64 of its msgpack.
pub fn entry(
    uid: &str,
    nsp: &str,
    kind: u64,
    data: Option<&Json>,
    attachments: &[Bytes],
) -> Result<Vec<(&'static str, String)>, CodecError> {
    let mut fields = vec![
        ("uid", uid.to_owned()),
        ("nsp", nsp.to_owned()),
        ("type", kind.to_string()),
    ];
    if let Some(data) = data {
        let data = if attachments.is_empty() {
            data.to_string()
        } else {
            let packed = codec::encode(&codec::to_msgpack(data, attachments)?);
            base64::engine::general_purpose::STANDARD.encode(packed)
        };
        fields.push(("data", data));
    }
    Ok(fields)
}

/// Decodes a stream entry's fields (values as Redis gives them).
pub fn decode_entry(fields: &[(String, Vec<u8>)]) -> Result<Envelope, CodecError> {
    let field = |name: &'static str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_slice())
    };
    let text = |name: &'static str| -> Result<String, CodecError> {
        let value = field(name).ok_or(CodecError::Shape(name))?;
        String::from_utf8(value.to_vec()).map_err(|_| CodecError::Shape(name))
    };
    let kind: u64 = text("type")?
        .parse()
        .map_err(|_| CodecError::Shape("type"))?;
    let mut attachments = Vec::new();
    let mut envelope = serde_json::Map::new();
    envelope.insert("type".into(), Json::from(kind));
    if let Some(data) = field("data") {
        let data = if data.first() == Some(&b'{') {
            serde_json::from_slice::<Json>(data)?
        } else {
            let packed = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|_| CodecError::Shape("data is neither JSON nor base64"))?;
            codec::to_json(codec::decode(&packed)?, &mut attachments)?
        };
        envelope.insert("data".into(), data);
    }
    envelope.insert("uid".into(), Json::from(text("uid")?));
    envelope.insert("nsp".into(), Json::from(text("nsp")?));
    sharded_wire::decode_value(Json::Object(envelope), attachments)
}

/// Whether an entry id is one (`<millis>-<sequence>`), as Node checks an
/// offset before it asks Redis.
pub fn is_entry_id(offset: &str) -> bool {
    let Some((millis, sequence)) = offset.split_once('-') else {
        return false;
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    digits(millis) && digits(sequence)
}

/// A session as Node's adapter keeps it.
pub fn encode_session(session: &Session) -> Result<String, CodecError> {
    let rooms: Vec<&str> = session.rooms.iter().map(Room::as_str).collect();
    let value = json!({
        "sid": session.sid.as_str(),
        "pid": session.pid.as_str(),
        "rooms": rooms,
        "data": session.data,
    });
    let packed = codec::encode(&codec::to_msgpack(&value, &[])?);
    Ok(base64::engine::general_purpose::STANDARD.encode(packed))
}

/// A kept session, as Node's adapter or ours wrote it.
pub fn decode_session(text: &[u8]) -> Result<Session, CodecError> {
    let packed = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| CodecError::Shape("session is not base64"))?;
    let Json::Object(mut object) = codec::to_json(codec::decode(&packed)?, &mut Vec::new())? else {
        return Err(CodecError::Shape("session is not a map"));
    };
    let sid = match object.get("sid") {
        Some(Json::String(sid)) => Sid::parse(sid).map_err(|_| CodecError::Shape("sid"))?,
        _ => return Err(CodecError::Shape("sid")),
    };
    let pid = match object.get("pid") {
        Some(Json::String(pid)) => Str::from(pid.clone()),
        _ => return Err(CodecError::Shape("pid")),
    };
    let rooms = crate::wire::rooms_from_json(object.get("rooms"));
    let data = object.remove("data").unwrap_or(Json::Null);
    Ok(Session {
        sid,
        pid,
        rooms,
        data,
    })
}

/// Whether a broadcast was meant for a socket in `rooms` (Node's
/// `shouldIncludePacket`).
pub fn meant_for(rooms: &[Room], opts: &BroadcastOptions) -> bool {
    let included = opts.rooms.is_empty() || rooms.iter().any(|room| opts.rooms.contains(room));
    let excluded = rooms.iter().any(|room| opts.except.contains(room));
    included && !excluded
}

/// The id right after `offset` (exclusive ranges need Redis 6.2; Node
/// counts up the sequence, and so does this).
pub fn next_id(offset: &str) -> String {
    match offset.split_once('-') {
        Some((millis, sequence)) => match sequence.parse::<u64>() {
            Ok(sequence) => format!("{millis}-{}", sequence.saturating_add(1)),
            Err(_) => offset.to_owned(),
        },
        None => offset.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_codes_and_stream_names_are_nodes() {
        // What the adapter's own hashCode printed on Node 20:
        // "/" 47, "/chat" 46457863, "/admin-namespace" -1677369266 (and
        // -1677369266 % 4 = -2 in JavaScript).
        assert_eq!(hash_code("/"), 47);
        assert_eq!(hash_code("/chat"), 46_457_863);
        assert_eq!(hash_code("/admin-namespace"), -1_677_369_266);
        assert_eq!(stream_name("socket.io", 1, "/chat"), "socket.io");
        assert_eq!(stream_name("socket.io", 4, "/"), "socket.io-3");
        assert_eq!(
            stream_name("socket.io", 4, "/admin-namespace"),
            "socket.io--2"
        );
        assert_eq!(
            streams_to_read("s", 3),
            ["s--2", "s--1", "s-0", "s-1", "s-2"]
        );
    }

    #[test]
    fn offsets_are_checked_and_counted_up() {
        assert!(is_entry_id("1700000000000-0"));
        assert!(!is_entry_id("1700000000000"));
        assert!(!is_entry_id("abc-1"));
        assert!(!is_entry_id("1-"));
        assert_eq!(next_id("17-4"), "17-5");
    }

    #[test]
    fn sessions_round_trip() {
        let session = Session {
            sid: Sid::parse("abcdefghijklmnopqrst").unwrap(),
            pid: Str::from("pid-1"),
            rooms: vec![Room::from("a"), Room::from("b")],
            data: json!({ "user": "ann", "n": 3 }),
        };
        let text = encode_session(&session).unwrap();
        assert_eq!(decode_session(text.as_bytes()).unwrap(), session);
        assert!(decode_session(b"not base64!").is_err());
    }

    #[test]
    fn only_what_a_socket_could_get_is_replayed() {
        let rooms = [Room::from("sid1"), Room::from("blue")];
        let to = |rooms: &[&str], except: &[&str]| {
            BroadcastOptions::new(
                rooms.iter().map(|r| Room::from(*r)).collect(),
                except.iter().map(|r| Room::from(*r)).collect(),
            )
        };
        assert!(meant_for(&rooms, &to(&[], &[])));
        assert!(meant_for(&rooms, &to(&["blue", "red"], &[])));
        assert!(!meant_for(&rooms, &to(&["red"], &[])));
        assert!(!meant_for(&rooms, &to(&[], &["blue"])));
    }
}
