//! Input generators for the socketio-proto targets.
//!
//! Most random text is not a Socket.IO packet, so the targets mostly build
//! well-formed ones (a CONNECT with auth, an EVENT `["name", ...]` with an ack
//! id and placeholders for its attachments, an ACK, a DISCONNECT) and keep a
//! raw variant for the garbage. Raw text comes as bytes made UTF-8 lossily,
//! so the seed generator never has to lay out an `arbitrary` string.

use bytes::Bytes;
use engineio_proto::{Message, Str};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use socketio_proto::{AckId, Packet, PacketKind};

use crate::{Pick, MAX_RAW};

/// Most attachments a built packet carries (the decoders under test allow
/// up to about this many, so both sides of the limit are reached).
pub const MAX_BUILT_ATTACHMENTS: usize = 12;

/// Namespaces the built packets use besides `/` and raw ones.
pub const NAMESPACES: [&str; 4] = ["/custom", "/a", "/b/c", "/ünï"];

/// Text from raw bytes, invalid UTF-8 replaced.
pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(MAX_RAW)]).into_owned()
}

/// A namespace as a client writes it.
#[derive(Arbitrary, Debug, Clone)]
pub enum NspSpec {
    Main,
    /// One of [`NAMESPACES`].
    Named(u8),
    /// One the connection announced before (in the targets that track them).
    Seen(u8),
    /// Anything after a `/` (commas included: the packet is then garbage).
    Raw(Vec<u8>),
}

impl NspSpec {
    pub fn to_nsp(&self, seen: &[Str]) -> Str {
        match self {
            NspSpec::Main => Str::from("/"),
            NspSpec::Named(i) => Str::from(NAMESPACES[usize::from(*i) % NAMESPACES.len()]),
            NspSpec::Seen(i) if !seen.is_empty() => seen[usize::from(*i) % seen.len()].clone(),
            NspSpec::Seen(_) => Str::from("/"),
            NspSpec::Raw(b) => Str::from(format!("/{}", lossy(b))),
        }
    }
}

/// A JSON value that is not a container.
#[derive(Arbitrary, Debug, Clone)]
pub enum LeafSpec {
    Null,
    Bool(bool),
    Int(i64),
    /// A small string (escaped as JSON).
    Str(Vec<u8>),
    /// `{"_placeholder":true,"num":N}`.
    Placeholder(u8),
    /// A reserved event name as a string.
    Reserved(u8),
}

impl LeafSpec {
    fn write(&self, out: &mut String) {
        match self {
            LeafSpec::Null => out.push_str("null"),
            LeafSpec::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            LeafSpec::Int(n) => out.push_str(&n.to_string()),
            LeafSpec::Str(b) => out.push_str(&json_string(&lossy(&b[..b.len().min(64)]))),
            LeafSpec::Placeholder(n) => out.push_str(&placeholder(usize::from(*n))),
            LeafSpec::Reserved(i) => {
                let names = socketio_proto::packet::RESERVED_EVENTS;
                out.push_str(&json_string(names[usize::from(*i) % names.len()]));
            }
        }
    }
}

/// A JSON value: a leaf, or a leaf wrapped in arrays and objects.
#[derive(Arbitrary, Debug, Clone)]
pub enum JsonSpec {
    Leaf(LeafSpec),
    Array(Vec<LeafSpec>),
    Object(Vec<(u8, LeafSpec)>),
    /// `leaf` wrapped `depth % 8` times, alternately in `[...]` and `{"k":...}`.
    Nested {
        depth: u8,
        leaf: LeafSpec,
    },
}

impl JsonSpec {
    pub fn write(&self, out: &mut String) {
        match self {
            JsonSpec::Leaf(leaf) => leaf.write(out),
            JsonSpec::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().take(16).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            JsonSpec::Object(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().take(16).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&format!("\"k{key}\":"));
                    value.write(out);
                }
                out.push('}');
            }
            JsonSpec::Nested { depth, leaf } => {
                let depth = depth % 8;
                for level in 0..depth {
                    out.push_str(if level % 2 == 0 { "[" } else { "{\"k\":" });
                }
                leaf.write(out);
                for level in (0..depth).rev() {
                    out.push(if level % 2 == 0 { ']' } else { '}' });
                }
            }
        }
    }
}

/// An event name (the first element of an EVENT's array).
#[derive(Arbitrary, Debug, Clone)]
pub enum NameSpec {
    Message,
    Chat,
    /// A name the protocol reserves: the decoder refuses the event.
    Reserved(u8),
    /// Node allows a number as the event name.
    Number(i32),
    Raw(Vec<u8>),
}

impl NameSpec {
    fn write(&self, out: &mut String) {
        match self {
            NameSpec::Message => out.push_str("\"message\""),
            NameSpec::Chat => out.push_str("\"chat\""),
            NameSpec::Reserved(i) => LeafSpec::Reserved(*i).write(out),
            NameSpec::Number(n) => out.push_str(&n.to_string()),
            NameSpec::Raw(b) => out.push_str(&json_string(&lossy(&b[..b.len().min(64)]))),
        }
    }
}

/// A packet as a client (or the application) builds it.
#[derive(Arbitrary, Debug, Clone)]
pub enum PacketSpec {
    Connect {
        nsp: NspSpec,
        auth: Option<Vec<(u8, LeafSpec)>>,
    },
    Disconnect {
        nsp: NspSpec,
    },
    Event {
        nsp: NspSpec,
        name: NameSpec,
        args: Vec<JsonSpec>,
        ack: Option<Pick>,
        attachments: Vec<Vec<u8>>,
    },
    Ack {
        nsp: NspSpec,
        id: Pick,
        args: Vec<JsonSpec>,
        attachments: Vec<Vec<u8>>,
    },
    /// What a server refuses (one variant, so that it is drawn no more often
    /// than each well-formed kind).
    Refused(RefusedSpec),
}

/// A CONNECT_ERROR from the client, or text that is usually not a packet.
#[derive(Arbitrary, Debug, Clone)]
pub enum RefusedSpec {
    ConnectError { nsp: NspSpec, data: JsonSpec },
    Raw(Vec<u8>),
}

/// What a [`PacketSpec`] turns into: a packet, or a raw text message.
#[derive(Debug, Clone)]
pub enum Built {
    Packet(Packet),
    Raw(Str),
}

impl Built {
    /// The Engine.IO messages that carry it.
    pub fn messages(&self) -> Vec<Message> {
        match self {
            Built::Packet(packet) => packet.encode().messages().collect(),
            Built::Raw(text) => vec![Message::Text(text.clone())],
        }
    }
}

impl PacketSpec {
    /// Builds the packet; `seen` are namespaces and `ack_ids` ack ids the
    /// target knows of, for [`NspSpec::Seen`] and [`Pick`].
    pub fn build(&self, seen: &[Str], ack_ids: &[u64]) -> Built {
        let packet = match self {
            PacketSpec::Connect { nsp, auth } => Packet::new(
                PacketKind::Connect,
                nsp.to_nsp(seen),
                auth.as_ref().map(|entries| {
                    let mut out = String::new();
                    JsonSpec::Object(entries.clone()).write(&mut out);
                    Str::from(out)
                }),
            ),
            PacketSpec::Disconnect { nsp } => {
                Packet::new(PacketKind::Disconnect, nsp.to_nsp(seen), None)
            }
            PacketSpec::Event {
                nsp,
                name,
                args,
                ack,
                attachments,
            } => {
                let attachments = attachments_of(attachments);
                let mut data = String::from("[");
                name.write(&mut data);
                write_args(&mut data, args, attachments.len());
                let mut packet =
                    Packet::new(PacketKind::Event, nsp.to_nsp(seen), Some(Str::from(data)));
                packet.id = ack.map(|p| AckId(p.pick(ack_ids)));
                packet.attachments = attachments;
                packet
            }
            PacketSpec::Ack {
                nsp,
                id,
                args,
                attachments,
            } => {
                let attachments = attachments_of(attachments);
                let mut data = String::from("[");
                let mut first = true;
                for arg in args.iter().take(8) {
                    if !first {
                        data.push(',');
                    }
                    first = false;
                    arg.write(&mut data);
                }
                for i in 0..attachments.len() {
                    if !first {
                        data.push(',');
                    }
                    first = false;
                    data.push_str(&placeholder(i));
                }
                data.push(']');
                let mut packet =
                    Packet::new(PacketKind::Ack, nsp.to_nsp(seen), Some(Str::from(data)));
                packet.id = Some(AckId(id.pick(ack_ids)));
                packet.attachments = attachments;
                packet
            }
            PacketSpec::Refused(RefusedSpec::ConnectError { nsp, data }) => {
                let mut out = String::new();
                data.write(&mut out);
                Packet::new(
                    PacketKind::ConnectError,
                    nsp.to_nsp(seen),
                    Some(Str::from(out)),
                )
            }
            PacketSpec::Refused(RefusedSpec::Raw(b)) => return Built::Raw(Str::from(lossy(b))),
        };
        Built::Packet(packet)
    }
}

/// `,arg` for each argument, then a placeholder for each attachment, then `]`.
pub fn write_args(out: &mut String, args: &[JsonSpec], attachments: usize) {
    for arg in args.iter().take(8) {
        out.push(',');
        arg.write(out);
    }
    for i in 0..attachments {
        out.push(',');
        out.push_str(&placeholder(i));
    }
    out.push(']');
}

pub fn attachments_of(specs: &[Vec<u8>]) -> Vec<Bytes> {
    specs
        .iter()
        .take(MAX_BUILT_ATTACHMENTS)
        .map(|b| Bytes::copy_from_slice(&b[..b.len().min(MAX_RAW)]))
        .collect()
}

pub fn placeholder(num: usize) -> String {
    format!("{{\"_placeholder\":true,\"num\":{num}}}")
}

pub fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// 0 to 3 small binary attachments.
pub fn attachments(n: u8) -> Vec<bytes::Bytes> {
    (0..usize::from(n % 4))
        .map(|i| bytes::Bytes::from(vec![i as u8; i + 1]))
        .collect()
}

/// An EVENT named `name` on `nsp` with these arguments and attachments
/// (placeholders referring to them among the arguments).
pub fn event(
    nsp: engineio_proto::Str,
    name: &str,
    args: &[JsonSpec],
    attachments: Vec<bytes::Bytes>,
) -> socketio_proto::Packet {
    let mut data = format!("[\"{name}\"");
    write_args(&mut data, args, attachments.len());
    let mut packet = socketio_proto::Packet::new(
        socketio_proto::PacketKind::Event,
        nsp,
        Some(engineio_proto::Str::from(data)),
    );
    packet.attachments = attachments;
    packet
}
