//! Split invariance of the server session.
//!
//! * Incoming: the messages a session hands the application do not depend on
//!   how the client cut them into POST bodies, nor on whether they came over
//!   polling, over a WebSocket from the start, or partly over each around an
//!   upgrade.
//! * Outgoing: messages the application sends reach a polling client in
//!   order and exactly once, however its GETs interleave with the sends (and
//!   with heartbeats, when time moves).

// `prop_oneof!` expands to `Arc`s inside proptest's strategies; the crate's
// ban on `Arc` is about shared protocol state, which these tests have none of.
#![allow(clippy::disallowed_types)]

use core::time::Duration;

use bytes::Bytes;
use engineio_proto::server::{
    self, ContentType, HttpResponse, Opening, Output, Server, ServerConfig, Session,
};
use engineio_proto::{
    payload, CountingSidGenerator, Frame, Instant, Message, Packet, RequestId, Str, WsId,
};
use proptest::collection::vec;
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// Messages a polling payload can carry: text without the record separator
/// (see `codec_props::text_with_the_record_separator_splits_in_a_payload`),
/// or any bytes.
fn any_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        any::<String>().prop_map(|s| Message::Text(Str::from(s.replace('\u{1e}', "")))),
        "[\\x00-\\x1d\\x1f\\x200-9b€]{0,8}".prop_map(|s| Message::Text(Str::from(s))),
        vec(any::<u8>(), 0..48).prop_map(|b| Message::Binary(Bytes::from(b))),
    ]
}

/// Messages and, for each gap between two of them, whether a new chunk
/// starts there.
fn messages_and_cuts() -> impl Strategy<Value = (Vec<Message>, Vec<bool>)> {
    vec(any_message(), 1..24).prop_flat_map(|messages| {
        let gaps = messages.len() - 1;
        (Just(messages), vec(any::<bool>(), gaps))
    })
}

fn chunks<'a>(messages: &'a [Message], cuts: &[bool]) -> Vec<&'a [Message]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (gap, &cut) in cuts.iter().enumerate() {
        if cut {
            out.push(&messages[start..=gap]);
            start = gap + 1;
        }
    }
    out.push(&messages[start..]);
    out
}

fn drain(session: &mut Session) -> Vec<Output> {
    std::iter::from_fn(|| session.poll_output()).collect()
}

fn open(config: ServerConfig, opening: Opening) -> (Session, Vec<Output>) {
    let mut server = Server::new(config, CountingSidGenerator::default());
    let mut session = server.open_session(Instant::ZERO, opening);
    let outputs = drain(&mut session);
    (session, outputs)
}

/// A polling session whose handshake GET (request 1) has been answered.
fn polling_session(config: ServerConfig) -> Session {
    let (session, outputs) = open(config, Opening::Polling(RequestId(1)));
    match &outputs[..] {
        [Output::Respond { request, response }] => {
            assert_eq!(*request, RequestId(1));
            assert!(response.body.starts_with(b"0{\"sid\":"), "{response:?}");
        }
        other => panic!("handshake outputs {other:?}"),
    }
    session
}

fn websocket_session() -> Session {
    let (session, outputs) = open(ServerConfig::default(), Opening::WebSocket(WsId(1)));
    match &outputs[..] {
        [Output::WsSend {
            ws: WsId(1),
            frame: Frame::Text(open),
            ..
        }] => assert!(open.starts_with("0{\"sid\":")),
        other => panic!("handshake outputs {other:?}"),
    }
    session
}

/// The messages among `outputs`, checking that nothing but messages and the
/// allowed responses appeared.
fn messages_of(outputs: Vec<Output>, mut other: impl FnMut(Output)) -> Vec<Message> {
    let mut messages = Vec::new();
    for output in outputs {
        match output {
            Output::Message(message) => messages.push(message),
            output => other(output),
        }
    }
    messages
}

/// POSTs `chunk` as one payload and returns the messages the session emitted,
/// checking the POST got exactly one `200 ok`.
fn post(
    session: &mut Session,
    now: Instant,
    request: RequestId,
    chunk: &[Message],
) -> Vec<Message> {
    let packets: Vec<Packet> = chunk.iter().cloned().map(Packet::Message).collect();
    session.handle_input(
        now,
        server::Input::Post {
            request,
            body: payload::encode(&packets),
        },
    );
    let mut answers = Vec::new();
    let messages = messages_of(drain(session), |output| match output {
        Output::Respond {
            request: r,
            response,
        } if r == request => answers.push(response),
        other => panic!("unexpected output {other:?} for POST {request:?}"),
    });
    assert_eq!(
        answers.len(),
        1,
        "POST {request:?} answered {} times",
        answers.len()
    );
    assert_eq!(answers[0].status, 200);
    assert_eq!(&answers[0].body[..], b"ok");
    assert_eq!(answers[0], HttpResponse::ok());
    messages
}

/// Sends each message as its own frame on `ws` and returns what the session emitted.
fn frames(session: &mut Session, now: Instant, ws: WsId, messages: &[Message]) -> Vec<Message> {
    let mut received = Vec::new();
    for message in messages {
        let frame = Packet::Message(message.clone()).encode_frame();
        session.handle_input(now, server::Input::WsFrame { ws, frame });
        received.extend(messages_of(drain(session), |output| {
            panic!("unexpected output {output:?} for a frame")
        }));
    }
    received
}

/// Upgrades an idle polling session to WebSocket `ws`.
fn upgrade(session: &mut Session, now: Instant, ws: WsId) {
    session.handle_input(now, server::Input::Upgrade(ws));
    assert_eq!(drain(session), vec![]);
    session.handle_input(
        now,
        server::Input::WsFrame {
            ws,
            frame: Packet::PING_PROBE.encode_frame(),
        },
    );
    assert_eq!(
        drain(session),
        vec![Output::WsSend {
            ws,
            frame: Packet::PONG_PROBE.encode_frame(),
            compress: true,
        }]
    );
    session.handle_input(
        now,
        server::Input::WsFrame {
            ws,
            frame: Packet::Upgrade.encode_frame(),
        },
    );
    assert_eq!(drain(session), vec![Output::Upgraded]);
}

/// `cases` per property, unless `PROPTEST_CASES` asks for a deeper run.
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
// Incoming
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn incoming_messages_do_not_depend_on_the_split(
        (messages, cuts) in messages_and_cuts(),
        upgrade_after in any::<prop::sample::Index>(),
    ) {
        let now = Instant::ZERO;

        // All in one POST.
        let mut session = polling_session(ServerConfig::default());
        let whole = post(&mut session, now, RequestId(2), &messages);
        prop_assert!(!session.is_closed());

        // One POST per chunk, each with a fresh request id.
        let mut session = polling_session(ServerConfig::default());
        let mut chunked = Vec::new();
        for (i, chunk) in chunks(&messages, &cuts).into_iter().enumerate() {
            chunked.extend(post(&mut session, now, RequestId(2 + i as u64), chunk));
        }
        prop_assert!(!session.is_closed());

        // One WebSocket frame per message.
        let mut session = websocket_session();
        let framed = frames(&mut session, now, WsId(1), &messages);
        prop_assert!(!session.is_closed());

        // POSTs up to some point, then an upgrade, then frames.
        let split = upgrade_after.index(messages.len() + 1);
        let (before, after) = messages.split_at(split);
        let mut session = polling_session(ServerConfig::default());
        let mut mixed = Vec::new();
        if !before.is_empty() {
            mixed.extend(post(&mut session, now, RequestId(2), before));
        }
        upgrade(&mut session, now, WsId(2));
        mixed.extend(frames(&mut session, now, WsId(2), after));
        prop_assert!(!session.is_closed());

        prop_assert_eq!(&whole, &messages);
        prop_assert_eq!(&chunked, &messages);
        prop_assert_eq!(&framed, &messages);
        prop_assert_eq!(&mixed, &messages);
    }
}

// ---------------------------------------------------------------------------
// Outgoing
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    /// The application sends a message.
    Send(Message),
    /// The client issues a GET (skipped while one is parked: clients never
    /// overlap polls).
    Poll,
    /// Virtual time moves on this many milliseconds.
    Wait(u64),
}

fn ops(wait: bool) -> impl Strategy<Value = Vec<Op>> {
    let max_wait: u64 = if wait { 1_500 } else { 0 };
    let op = prop_oneof![
        4 => any_message().prop_map(Op::Send),
        3 => Just(Op::Poll),
        2 => (0..=max_wait).prop_map(Op::Wait),
    ];
    vec(op, 0..48)
}

/// A polling client reading from a session: tracks its parked GET, decodes
/// what the GETs return and answers PINGs with a POSTed PONG.
struct Reader {
    next_request: u64,
    parked: Option<RequestId>,
    received: Vec<Message>,
    pings: usize,
    now: Instant,
}

impl Reader {
    fn new() -> Reader {
        Reader {
            next_request: 2,
            parked: None,
            received: Vec::new(),
            pings: 0,
            now: Instant::ZERO,
        }
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    fn poll(&mut self, session: &mut Session) {
        if self.parked.is_none() {
            let request = self.request_id();
            self.parked = Some(request);
            session.handle_input(self.now, server::Input::Poll(request));
            self.absorb(session);
        }
    }

    /// Handles every output so far: GET answers, and POST answers of PONGs.
    fn absorb(&mut self, session: &mut Session) {
        let mut pongs = 0;
        for output in drain(session) {
            match output {
                Output::Respond { request, response } => {
                    assert_eq!(Some(request), self.parked, "answer to a GET not parked");
                    self.parked = None;
                    assert_eq!(response.status, 200);
                    assert_eq!(response.content_type, ContentType::Payload);
                    for packet in payload::decode(response.body).expect("UTF-8 payload") {
                        match packet.expect("valid packet") {
                            Packet::Message(message) => self.received.push(message),
                            Packet::Ping(data) if data.is_empty() => {
                                self.pings += 1;
                                pongs += 1;
                            }
                            other => panic!("unexpected packet {other:?}"),
                        }
                    }
                }
                other => panic!("unexpected output {other:?}"),
            }
        }
        for _ in 0..pongs {
            let request = self.request_id();
            session.handle_input(
                self.now,
                server::Input::Post {
                    request,
                    body: payload::encode(&[Packet::PONG]),
                },
            );
            assert_eq!(
                drain(session),
                vec![Output::Respond {
                    request,
                    response: HttpResponse::ok()
                }]
            );
        }
    }
}

fn run_outgoing(config: ServerConfig, ops: &[Op]) -> Result<Reader, TestCaseError> {
    let mut session = polling_session(config);
    let mut reader = Reader::new();
    let mut sent = Vec::new();
    for op in ops {
        match op {
            Op::Send(message) => {
                prop_assert_eq!(session.send(reader.now, message.clone()), Ok(()));
                sent.push(message.clone());
                reader.absorb(&mut session);
            }
            Op::Poll => reader.poll(&mut session),
            Op::Wait(ms) => {
                reader.now = reader.now + Duration::from_millis(*ms);
                session.handle_input(reader.now, server::Input::Timeout);
                reader.absorb(&mut session);
            }
        }
        prop_assert!(!session.is_closed());
    }
    // A last GET collects whatever is still buffered.
    reader.poll(&mut session);
    prop_assert_eq!(session.buffered(), 0);
    prop_assert!(!session.is_closed());
    prop_assert_eq!(&reader.received, &sent);
    Ok(reader)
}

proptest! {
    #![proptest_config(config(256))]

    /// Time stands still, so no PING ever fires.
    #[test]
    fn outgoing_messages_arrive_once_in_order(ops in ops(false)) {
        let reader = run_outgoing(ServerConfig::default(), &ops)?;
        prop_assert_eq!(reader.pings, 0);
    }

    /// Time moves and PINGs interleave with the messages; the client answers
    /// each one, and a long ping timeout keeps a slow reader alive.
    #[test]
    fn outgoing_messages_arrive_once_in_order_between_pings(ops in ops(true)) {
        let mut config = ServerConfig::default();
        config.ping_interval = Duration::from_millis(1_000);
        config.ping_timeout = Duration::from_secs(3_600);
        run_outgoing(config, &ops)?;
    }
}

/// The time-moving property above does see PINGs between messages.
#[test]
fn pings_interleave_with_messages() {
    let mut config = ServerConfig::default();
    config.ping_interval = Duration::from_millis(1_000);
    config.ping_timeout = Duration::from_secs(3_600);
    let ops = [
        Op::Send("a".into()),
        Op::Wait(1_000),
        Op::Send("b".into()),
        Op::Poll,
        Op::Poll,
        Op::Wait(1_000),
        Op::Send(vec![1, 2, 3].into()),
    ];
    let reader = run_outgoing(config, &ops).unwrap();
    assert_eq!(reader.pings, 2);
    assert_eq!(reader.received.len(), 3);
}
