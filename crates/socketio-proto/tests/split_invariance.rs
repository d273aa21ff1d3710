//! Split invariance of the server connection: what the application sees
//! (`Event` and `Ack` outputs, in order) does not depend on how the client's
//! Engine.IO messages travel.
//!
//! * Binary packets (a text message, then its attachments): one WebSocket
//!   frame per message, or over polling with several messages per POST and
//!   the cuts anywhere, even between a packet's attachments.
//! * Sequences of events and acks, with and without attachments, on two
//!   namespaces: WebSocket frames, polling in arbitrary POST chunks, one POST
//!   per message, one POST for everything, and partly over polling then the
//!   rest over the WebSocket the session upgraded to (the cut may fall inside
//!   a binary packet).

// `prop_oneof!` expands to `Arc`s inside proptest's strategies; the crate's
// ban on `Arc` is about shared protocol state, which these tests have none of.
#![allow(clippy::disallowed_types)]

use bytes::Bytes;
use engineio_proto::server::{self as eio, HttpResponse, Opening, Server, ServerConfig};
use engineio_proto::{
    payload, CountingSidGenerator, Frame, Instant, Message, Packet as EioPacket, RequestId, Sid,
    Str, WsId,
};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Map, Value};
use socketio_proto::server::{Connection, ConnectionConfig, Input, Output};
use socketio_proto::{AckId, Packet, PacketKind};

const NAMESPACES: [&str; 2] = ["/", "/chat"];
/// Server acks awaiting the client's answer: ids `1..=PENDING_ACKS` on `/`.
const PENDING_ACKS: u64 = 3;
const T0: Instant = Instant::from_millis(1_000);

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Polling,
    WebSocket,
}

/// A connection with a socket on each of [`NAMESPACES`] and
/// [`PENDING_ACKS`] acks awaited on `/`.
struct Harness {
    conn: Connection,
    transport: Transport,
    ws: WsId,
    next_request: u64,
    /// `Event` and `Ack` outputs so far.
    seen: Vec<Output>,
}

impl Harness {
    fn new(transport: Transport) -> Harness {
        let mut server = Server::new(ServerConfig::default(), CountingSidGenerator::default());
        let opening = match transport {
            Transport::Polling => Opening::Polling(RequestId(1)),
            Transport::WebSocket => Opening::WebSocket(WsId(1)),
        };
        let session = server.open_session(T0, opening);
        let mut h = Harness {
            conn: Connection::new(T0, session, &ConnectionConfig::default()),
            transport,
            ws: WsId(1),
            next_request: 1,
            seen: Vec::new(),
        };
        h.drain();
        let connects: Vec<Message> = NAMESPACES
            .iter()
            .map(|nsp| {
                let packet = Packet::new(PacketKind::Connect, Str::from(*nsp), None);
                packet.encode().head().clone()
            })
            .collect();
        let outputs = h.send_all(&connects);
        assert_eq!(outputs.len(), NAMESPACES.len(), "{outputs:?}");
        for (i, nsp) in NAMESPACES.iter().enumerate() {
            let sid = Sid::parse(&format!("s{i}")).unwrap();
            h.conn.accept(T0, nsp, sid, None).unwrap();
        }
        for _ in 0..PENDING_ACKS {
            let event = Packet::new(
                PacketKind::Event,
                Str::from("/"),
                Some(Str::from(r#"["ask"]"#)),
            );
            h.conn.emit_with_ack(T0, event, None).unwrap();
        }
        h.drain();
        assert!(h.seen.is_empty());
        h
    }

    /// Drains the outputs, keeping `Event` and `Ack`; anything that ends a
    /// socket is a failure.
    fn drain(&mut self) -> Vec<Output> {
        let mut other = Vec::new();
        while let Some(output) = self.conn.poll_output() {
            match output {
                Output::Event { .. } | Output::Ack { .. } => self.seen.push(output),
                Output::Transport(_) | Output::Upgraded => {}
                Output::Connect { .. } => other.push(output),
                output => panic!("unexpected {output:?}"),
            }
        }
        other
    }

    fn fresh_request(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// One POST carrying `messages`.
    fn post(&mut self, messages: &[Message]) -> Vec<Output> {
        let packets: Vec<EioPacket> = messages.iter().cloned().map(EioPacket::Message).collect();
        let request = self.fresh_request();
        self.conn.handle_input(
            T0,
            Input::Post {
                request,
                body: payload::encode(&packets),
            },
        );
        let mut answered = false;
        let mut other = Vec::new();
        while let Some(output) = self.conn.poll_output() {
            match output {
                Output::Transport(eio::Output::Respond {
                    request: r,
                    response,
                }) if r == request => {
                    assert_eq!(response, HttpResponse::ok());
                    answered = true;
                }
                Output::Event { .. } | Output::Ack { .. } => self.seen.push(output),
                Output::Connect { .. } => other.push(output),
                output => panic!("unexpected {output:?} for a POST"),
            }
        }
        assert!(answered, "POST not answered");
        other
    }

    /// Each message as its own frame.
    fn frames(&mut self, messages: &[Message]) -> Vec<Output> {
        let mut other = Vec::new();
        for message in messages {
            let frame = EioPacket::Message(message.clone()).encode_frame();
            self.conn
                .handle_input(T0, Input::WsFrame { ws: self.ws, frame });
            other.extend(self.drain());
        }
        other
    }

    fn send_all(&mut self, messages: &[Message]) -> Vec<Output> {
        match self.transport {
            Transport::Polling => self.post(messages),
            Transport::WebSocket => self.frames(messages),
        }
    }

    /// Upgrades a polling session to WebSocket 2.
    fn upgrade(&mut self) {
        assert_eq!(self.transport, Transport::Polling);
        let ws = WsId(2);
        self.conn.handle_input(T0, Input::Upgrade(ws));
        self.conn.handle_input(
            T0,
            Input::WsFrame {
                ws,
                frame: EioPacket::PING_PROBE.encode_frame(),
            },
        );
        self.conn.handle_input(
            T0,
            Input::WsFrame {
                ws,
                frame: EioPacket::Upgrade.encode_frame(),
            },
        );
        let mut upgraded = false;
        while let Some(output) = self.conn.poll_output() {
            match output {
                Output::Upgraded => upgraded = true,
                Output::Transport(eio::Output::WsSend { frame, .. }) => {
                    assert!(!matches!(frame, Frame::Text(ref t) if t.is_empty()));
                }
                Output::Transport(_) => {}
                output => panic!("unexpected {output:?} while upgrading"),
            }
        }
        assert!(upgraded, "upgrade did not complete");
        self.transport = Transport::WebSocket;
        self.ws = ws;
    }
}

/// Splits `messages` before every index where `cuts` says so.
fn chunks<'a>(messages: &'a [Message], cuts: &[bool]) -> Vec<&'a [Message]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (gap, &cut) in cuts
        .iter()
        .enumerate()
        .take(messages.len().saturating_sub(1))
    {
        if cut {
            out.push(&messages[start..=gap]);
            start = gap + 1;
        }
    }
    out.push(&messages[start..]);
    out
}

fn over_websocket(messages: &[Message]) -> Vec<Output> {
    let mut h = Harness::new(Transport::WebSocket);
    assert!(h.frames(messages).is_empty());
    h.seen
}

fn over_polling(messages: &[Message], cuts: &[bool]) -> Vec<Output> {
    let mut h = Harness::new(Transport::Polling);
    for chunk in chunks(messages, cuts) {
        assert!(h.post(chunk).is_empty());
    }
    h.seen
}

/// The first `k` messages over polling (cut by `cuts`), then an upgrade,
/// then the rest as frames.
fn across_upgrade(messages: &[Message], cuts: &[bool], k: usize) -> Vec<Output> {
    let mut h = Harness::new(Transport::Polling);
    let (before, after) = messages.split_at(k.min(messages.len()));
    if !before.is_empty() {
        for chunk in chunks(before, cuts) {
            assert!(h.post(chunk).is_empty());
        }
    }
    h.upgrade();
    assert!(h.frames(after).is_empty());
    h.seen
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

fn placeholder(num: usize) -> Value {
    let mut map = Map::new();
    map.insert("_placeholder".into(), Value::Bool(true));
    map.insert("num".into(), Value::from(num));
    Value::Object(map)
}

/// JSON arguments; strings may hold any character, the record separator
/// included (JSON escapes it, so a polling payload can carry it).
fn arg() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[\\x1e\\x00\"\\\\,/0-9a-z€]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec(("[a-z]{1,4}", inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum ClientPacket {
    Event {
        nsp: usize,
        args: Vec<Value>,
        ack: Option<u64>,
        attachments: Vec<Bytes>,
    },
    Ack {
        nsp: usize,
        id: u64,
        args: Vec<Value>,
        attachments: Vec<Bytes>,
    },
}

impl ClientPacket {
    fn packet(&self) -> Packet {
        let (kind, nsp, id, mut items, attachments) = match self {
            ClientPacket::Event {
                nsp,
                args,
                ack,
                attachments,
            } => {
                let mut items = vec![Value::from("ev")];
                items.extend(args.iter().cloned());
                (PacketKind::Event, *nsp, *ack, items, attachments)
            }
            ClientPacket::Ack {
                nsp,
                id,
                args,
                attachments,
            } => (PacketKind::Ack, *nsp, Some(*id), args.clone(), attachments),
        };
        items.extend((0..attachments.len()).map(placeholder));
        let data = serde_json::to_string(&Value::Array(items)).unwrap();
        Packet {
            kind,
            nsp: Str::from(NAMESPACES[nsp]),
            id: id.map(AckId),
            data: Some(Str::from(data)),
            attachments: attachments.clone(),
        }
    }
}

fn attachments(min: usize) -> impl Strategy<Value = Vec<Bytes>> {
    vec(vec(any::<u8>(), 0..24).prop_map(Bytes::from), min..5)
}

fn client_packet(min_attachments: usize) -> impl Strategy<Value = ClientPacket> {
    let nsp = 0..NAMESPACES.len();
    prop_oneof![
        3 => (
            nsp.clone(),
            vec(arg(), 0..3),
            proptest::option::of(any::<u64>()),
            attachments(min_attachments)
        )
            .prop_map(|(nsp, args, ack, attachments)| ClientPacket::Event {
                nsp,
                args,
                ack,
                attachments
            }),
        1 => (nsp, 0..PENDING_ACKS + 2, vec(arg(), 0..3), attachments(min_attachments)).prop_map(
            |(nsp, id, args, attachments)| ClientPacket::Ack {
                nsp,
                id,
                args,
                attachments
            }
        ),
    ]
}

fn messages_of(packets: &[ClientPacket]) -> Vec<Message> {
    packets
        .iter()
        .flat_map(|p| p.packet().encode().messages().collect::<Vec<_>>())
        .collect()
}

/// What the application must see: every event, and the first matching ack
/// for each pending id (on `/`).
fn expected(packets: &[ClientPacket]) -> Vec<Output> {
    let mut pending: Vec<u64> = (1..=PENDING_ACKS).collect();
    let mut out = Vec::new();
    for client in packets {
        let packet = client.packet();
        match packet.kind {
            PacketKind::Event => out.push(Output::Event {
                nsp: packet.nsp,
                data: packet.data.unwrap(),
                attachments: packet.attachments,
                ack: packet.id,
            }),
            _ => {
                let id = packet.id.unwrap();
                if packet.nsp.as_str() == "/" && pending.contains(&id.0) {
                    pending.retain(|&p| p != id.0);
                    out.push(Output::Ack {
                        nsp: packet.nsp,
                        id,
                        data: packet.data,
                        attachments: packet.attachments,
                    });
                }
            }
        }
    }
    out
}

/// Packets, and a cut flag for each gap between their messages.
fn packets_and_cuts(
    min_attachments: usize,
) -> impl Strategy<Value = (Vec<ClientPacket>, Vec<bool>, usize)> {
    vec(client_packet(min_attachments), 1..10).prop_flat_map(|packets| {
        let n = messages_of(&packets).len();
        (Just(packets), vec(any::<bool>(), n - 1), 0..=n)
    })
}

fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// Binary packets only (each with 1..5 attachments): one frame per
    /// message, or POSTs cut anywhere, attachments split across POSTs.
    #[test]
    fn binary_packets_frames_or_posts((packets, cuts, _) in packets_and_cuts(1)) {
        let messages = messages_of(&packets);
        let want = expected(&packets);
        prop_assert_eq!(&over_websocket(&messages), &want);
        prop_assert_eq!(&over_polling(&messages, &cuts), &want);
        // Every message its own POST, and all in one.
        prop_assert_eq!(&over_polling(&messages, &vec![true; messages.len()]), &want);
        prop_assert_eq!(&over_polling(&messages, &[]), &want);
    }

    /// Mixed events and acks: the same outputs over every way of carrying
    /// them, including an upgrade at any message.
    #[test]
    fn event_sequences_any_transport((packets, cuts, k) in packets_and_cuts(0)) {
        let messages = messages_of(&packets);
        let want = expected(&packets);
        prop_assert_eq!(&over_websocket(&messages), &want);
        prop_assert_eq!(&over_polling(&messages, &cuts), &want);
        prop_assert_eq!(&over_polling(&messages, &vec![true; messages.len()]), &want);
        prop_assert_eq!(&over_polling(&messages, &[]), &want);
        prop_assert_eq!(&across_upgrade(&messages, &cuts, k), &want);
    }
}
