//! Server sessions under arbitrary driver and client behaviour, on a virtual
//! clock. After every input the outputs are drained and checked against the
//! session's contract (see `Tracked::check_step`).

#![no_main]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use engineio_fuzz::{tracing, BodySpec, FrameSpec, MessageSpec, Pick, MAX_OUTPUTS_PER_STEP};
use engineio_proto::server::{
    Input, Method, Opening, Output, Request, Route, SendError, Server, ServerConfig, Session,
};
use engineio_proto::{
    CountingSidGenerator, Dialect, Frame, Instant, PostFailure, Protocol, RequestId, Sid,
    TransportKind, Transports, WsFailure, WsId,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

/// At most this many sessions live at once.
const MAX_SESSIONS: usize = 3;
/// At most this many inputs per run.
const MAX_OPS: usize = 512;
/// Packets a session may buffer beyond `max_buffered_packets`: the one
/// heartbeat PING queued while the client is not reading.
const BUFFER_SLACK: usize = 1;

#[derive(Arbitrary, Debug)]
struct Config {
    ping_interval_ms: u8,
    ping_timeout_ms: u8,
    upgrade_timeout_ms: u16,
    close_timeout_ms: u16,
    max_payload: u16,
    max_buffered_packets: u8,
    transports: u8,
    allow_upgrades: bool,
}

impl Config {
    fn build(&self) -> ServerConfig {
        let mut config = ServerConfig::default();
        // Durations of at least 1 ms, so that after any input no deadline is
        // already due.
        config.ping_interval = ms(1 + u64::from(self.ping_interval_ms) * 2);
        config.ping_timeout = ms(1 + u64::from(self.ping_timeout_ms) * 2);
        config.upgrade_timeout = ms(1 + u64::from(self.upgrade_timeout_ms % 1000));
        config.close_timeout = ms(1 + u64::from(self.close_timeout_ms % 1000));
        config.max_payload = 64 + usize::from(self.max_payload) % (4096 - 64 + 1);
        config.max_buffered_packets = 1 + usize::from(self.max_buffered_packets % 24);
        config.transports = match self.transports % 4 {
            0 => Transports::POLLING,
            1 => Transports::WEBSOCKET,
            _ => Transports::ALL,
        };
        config.allow_upgrades = self.allow_upgrades;
        config
    }
}

#[derive(Arbitrary, Debug)]
enum QuerySpec {
    Raw(String),
    Built {
        eio: Option<u8>,
        transport: u8,
        /// A live session's sid, or none.
        sid: Option<u8>,
        raw_sid: Option<String>,
        extra: Option<String>,
    },
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Let virtual time pass (ms).
    Advance(u16),
    Open {
        websocket: bool,
    },
    Poll {
        s: u8,
    },
    PollAborted {
        s: u8,
        request: Pick,
    },
    Post {
        s: u8,
        body: BodySpec,
    },
    Upgrade {
        s: u8,
    },
    WsFrame {
        s: u8,
        ws: Pick,
        frame: FrameSpec,
    },
    WsClosed {
        s: u8,
        ws: Pick,
    },
    /// The driver could not read a POST's body.
    PostFailed {
        s: u8,
        failure: u8,
    },
    /// The driver ended a WebSocket that broke the protocol.
    WsFailed {
        s: u8,
        ws: Pick,
        too_large: bool,
    },
    /// The application is full (`true`) or has room again.
    Hold {
        s: u8,
        hold: bool,
    },
    Send {
        s: u8,
        message: MessageSpec,
    },
    Close {
        s: u8,
    },
    Timeout {
        s: u8,
    },
    Route {
        method: u8,
        query: QuerySpec,
        websocket: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Case {
    config: Config,
    first_websocket: bool,
    ops: Vec<Op>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poll {
    Pending,
    Answered,
    Aborted,
}

/// A session and everything the driver has seen of it.
struct Tracked {
    session: Session,
    max_buffered: usize,
    polls: HashMap<RequestId, Poll>,
    posts: HashSet<RequestId>,
    answered: HashSet<RequestId>,
    /// WebSockets of this session, in the order they were handed in.
    ws: Vec<u64>,
    ws_closed: HashSet<WsId>,
    upgraded: bool,
    closed: bool,
    /// Whether the driver holds the session's messages.
    holding: bool,
    /// A POST whose packets wait while the driver holds them.
    held_post: Option<RequestId>,
}

struct World {
    server: Server<CountingSidGenerator>,
    sessions: Vec<Tracked>,
    sids: HashSet<Sid>,
    now: Instant,
    next_id: u64,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

impl World {
    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn open(&mut self, websocket: bool) {
        if self.sessions.len() >= MAX_SESSIONS {
            // Drop the oldest closed session to make room, as a driver would.
            match self.sessions.iter().position(|t| t.closed) {
                Some(i) => {
                    self.sessions.remove(i);
                }
                None => return,
            }
        }
        let transports = self.server.config().transports;
        let websocket = (websocket && transports.websocket) || !transports.polling;
        let id = self.fresh_id();
        let opening = if websocket {
            Opening::WebSocket(WsId(id))
        } else {
            Opening::Polling(RequestId(id))
        };
        // Every dialect: v4, v3 with and without binary payloads, JSONP.
        let v3 = |binary_payloads, jsonp| Dialect {
            protocol: Protocol::V3,
            binary_payloads,
            jsonp,
        };
        let dialect = [
            Dialect::default(),
            v3(true, None),
            v3(false, None),
            v3(false, Some(1)),
            Dialect {
                jsonp: Some(2),
                ..Dialect::default()
            },
        ][id as usize % 5];
        let sid = Sid::parse(&format!("s{id}")).expect("a valid sid");
        let session = self.server.open_session_as(self.now, sid, opening, dialect);
        assert!(self.sids.insert(session.sid()), "sid handed out twice");
        let mut tracked = Tracked {
            max_buffered: self.server.config().max_buffered_packets,
            session,
            polls: HashMap::new(),
            posts: HashSet::new(),
            answered: HashSet::new(),
            ws: Vec::new(),
            ws_closed: HashSet::new(),
            upgraded: false,
            closed: false,
            holding: false,
            held_post: None,
        };
        let first = tracked.session.poll_output();
        if tracing() {
            eprintln!("  open {:?} -> {first:?}", tracked.session.sid());
        }
        let expected_transport = if websocket {
            tracked.ws.push(id);
            match &first {
                Some(Output::WsSend {
                    ws,
                    frame: Frame::Text(t),
                    ..
                }) => {
                    assert_eq!(*ws, WsId(id));
                    assert!(t.starts_with("0{\"sid\":"), "first frame {t:?}");
                }
                other => panic!("websocket handshake answered with {other:?}"),
            }
            TransportKind::WebSocket
        } else {
            match &first {
                Some(Output::Respond { request, response }) => {
                    assert_eq!(*request, RequestId(id));
                    assert_eq!(response.status, 200);
                    // The OPEN packet, in the dialect's framing.
                    let open = br#"0{"sid":"#;
                    let body = &response.body[..];
                    let framed = match (dialect.protocol, dialect.jsonp) {
                        (_, Some(_)) => body.starts_with(b"___eio["),
                        (Protocol::V4, None) => body.starts_with(open),
                        (Protocol::V3, None) => body
                            .iter()
                            .position(|&b| b == b':')
                            .is_some_and(|colon| body[colon + 1..].starts_with(open)),
                    };
                    assert!(framed, "handshake body {body:?}");
                }
                other => panic!("polling handshake answered with {other:?}"),
            }
            tracked.polls.insert(RequestId(id), Poll::Answered);
            tracked.answered.insert(RequestId(id));
            TransportKind::Polling
        };
        assert_eq!(tracked.session.transport(), expected_transport);
        tracked.check_step(self.now, None, None);
        self.sessions.push(tracked);
    }

    fn route(&self, method: u8, query: &QuerySpec, websocket: bool) {
        let method = match method % 3 {
            0 => Method::Get,
            1 => Method::Post,
            _ => Method::Other,
        };
        let mut expected_sid = None;
        let query = match query {
            QuerySpec::Raw(q) => q.clone(),
            QuerySpec::Built {
                eio,
                transport,
                sid,
                raw_sid,
                extra,
            } => {
                let mut q = String::new();
                if let Some(extra) = extra {
                    q.push_str(extra);
                    q.push('&');
                }
                if let Some(eio) = eio {
                    q.push_str(&format!("EIO={}&", eio % 6));
                }
                q.push_str(match transport % 3 {
                    0 => "transport=polling",
                    1 => "transport=websocket",
                    _ => "transport=webtransport",
                });
                if let Some(i) = sid.filter(|_| !self.sessions.is_empty()) {
                    let sid = self.sessions[usize::from(i) % self.sessions.len()]
                        .session
                        .sid();
                    q.push_str("&sid=");
                    q.push_str(sid.as_str());
                    expected_sid = Some(sid);
                } else if let Some(raw) = raw_sid {
                    q.push_str("&sid=");
                    q.push_str(raw);
                }
                q
            }
        };
        let request = Request {
            method,
            query: &query,
            websocket,
        };
        match self.server.route(&request) {
            Ok(Route::Handshake(kind, _)) => {
                assert_eq!(method, Method::Get);
                assert_eq!(websocket, kind == TransportKind::WebSocket);
                assert!(self.server.config().transports.allows(kind));
            }
            Ok(Route::Poll(sid)) => {
                assert!(method == Method::Get && !websocket);
                check_sid(expected_sid, sid);
            }
            Ok(Route::Post(sid)) => {
                assert!(method == Method::Post && !websocket);
                check_sid(expected_sid, sid);
            }
            Ok(Route::Upgrade(sid)) => {
                assert!(websocket);
                check_sid(expected_sid, sid);
            }
            Err(error) => {
                let response = error.response();
                assert!(response.status == 400 || response.status == 403);
                assert!(response.body.starts_with(b"{\"code\":"));
            }
        }
    }
}

fn check_sid(expected: Option<Sid>, routed: Sid) {
    if let Some(expected) = expected {
        assert_eq!(expected, routed, "route lost the sid");
    }
}

impl Tracked {
    /// Drains the outputs of one input and checks them. `post` is the POST
    /// handed in by this input, which must be answered right away unless
    /// the driver holds the session's messages (then once they are let out,
    /// or the session closes); `aborted` the poll this input reported gone.
    ///
    /// An aborted poll may still be answered by the aborting input itself:
    /// every input first fires the timers due at its `now`, and a timer due
    /// before the abort (an upgrade NOOP, a PING) may have answered the poll
    /// already. A driver has to cope with answers to requests that are gone
    /// anyway. What must not happen is an answer in a later step.
    fn check_step(&mut self, now: Instant, post: Option<RequestId>, aborted: Option<RequestId>) {
        let mut count = 0;
        let mut post_answered = false;
        while let Some(output) = self.session.poll_output() {
            if tracing() {
                eprintln!("    -> {:?} {output:?}", self.session.sid());
            }
            count += 1;
            assert!(count < MAX_OUTPUTS_PER_STEP, "unbounded outputs");
            match output {
                Output::Respond { request, response } => {
                    assert!(self.answered.insert(request), "{request:?} answered twice");
                    if Some(request) == post {
                        post_answered = true;
                    } else if Some(request) == self.held_post {
                        self.held_post = None;
                    } else {
                        match self.polls.get_mut(&request) {
                            Some(state @ Poll::Pending) => *state = Poll::Answered,
                            Some(Poll::Aborted) => panic!("aborted {request:?} answered"),
                            Some(Poll::Answered) => unreachable!(),
                            None => assert!(
                                !self.posts.contains(&request),
                                "late answer to a POST {request:?}"
                            ),
                        }
                        assert!(
                            self.polls.contains_key(&request),
                            "answer to unknown request {request:?}"
                        );
                    }
                    // After Closed only refusals follow, except for the
                    // POST whose packets closed the session (a CLOSE, a PING
                    // from the client): it still gets its `ok`, as in Node.
                    if self.closed && Some(request) != post {
                        assert!(response.status >= 400, "after Closed: {response:?}");
                    }
                }
                Output::WsSend { ws, .. } => {
                    assert!(!self.closed, "WsSend after Closed");
                    assert!(self.ws.contains(&ws.0), "WsSend on unknown {ws:?}");
                    assert!(!self.ws_closed.contains(&ws), "WsSend on closed {ws:?}");
                }
                Output::WsClose { ws } => {
                    assert!(self.ws.contains(&ws.0), "WsClose of unknown {ws:?}");
                    assert!(self.ws_closed.insert(ws), "{ws:?} closed twice");
                }
                Output::Message(_) => assert!(!self.closed, "Message after Closed"),
                Output::Upgraded => {
                    assert!(!self.closed, "Upgraded after Closed");
                    assert!(!self.upgraded, "upgraded twice");
                    self.upgraded = true;
                }
                Output::Closed(_) => {
                    assert!(!self.closed, "Closed emitted twice");
                    self.closed = true;
                }
            }
        }
        if let Some(post) = post.filter(|_| !post_answered) {
            // Only a held POST may wait, and only one at a time.
            assert!(self.holding, "POST {post:?} not answered at once");
            assert!(self.held_post.is_none(), "two POSTs held");
            self.held_post = Some(post);
        }
        assert_eq!(
            self.held_post.is_some(),
            self.session.has_inbound(),
            "has_inbound disagrees with the unanswered POST"
        );
        if !self.holding || self.closed {
            assert_eq!(self.held_post, None, "POST left unanswered");
        }
        if let Some(state @ Poll::Pending) = aborted.and_then(|r| self.polls.get_mut(&r)) {
            *state = Poll::Aborted;
        }

        assert_eq!(
            self.session.is_closed(),
            self.closed,
            "is_closed disagrees with Closed"
        );
        let pending = self.polls.values().filter(|&&p| p == Poll::Pending).count();
        assert!(pending <= 1, "{pending} polls parked at once");
        if self.closed {
            assert_eq!(
                self.session.poll_timeout(),
                None,
                "timer armed after Closed"
            );
            assert_eq!(pending, 0, "a poll left hanging after Closed");
        } else {
            let next = self
                .session
                .poll_timeout()
                .expect("an open session always has a timer");
            assert!(next > now, "deadline {next:?} already due at {now:?}");
        }
        if self.session.transport() == TransportKind::WebSocket {
            assert_eq!(pending, 0, "a poll left hanging on a WebSocket session");
        }
        if self.upgraded {
            assert_eq!(
                self.session.transport(),
                TransportKind::WebSocket,
                "Upgraded but polling"
            );
        }
        assert!(
            self.session.buffered() <= self.max_buffered + BUFFER_SLACK,
            "buffered {} > {} + {BUFFER_SLACK}",
            self.session.buffered(),
            self.max_buffered
        );
    }
}

fuzz_target!(|input: Case| {
    let config = input.config.build();
    let max_payload = config.max_payload;
    let mut world = World {
        server: Server::new(config, CountingSidGenerator::default()),
        sessions: Vec::new(),
        sids: HashSet::new(),
        now: Instant::ZERO,
        next_id: 0,
    };
    world.open(input.first_websocket);

    for op in input.ops.iter().take(MAX_OPS) {
        let now = world.now;
        if tracing() {
            eprintln!("[{now:?}] {op:?}");
        }
        let index = |s: &u8, n: usize| usize::from(*s) % n;
        match op {
            Op::Advance(step) => {
                world.now = now + ms(u64::from(*step % 2000));
                continue;
            }
            Op::Open { websocket } => {
                world.open(*websocket);
                continue;
            }
            Op::Route {
                method,
                query,
                websocket,
            } => {
                world.route(*method, query, *websocket);
                continue;
            }
            _ => {}
        }
        let n = world.sessions.len();
        if n == 0 {
            continue;
        }
        let mut post = None;
        let mut aborted = None;
        let s = match op {
            Op::Poll { s }
            | Op::PollAborted { s, .. }
            | Op::Post { s, .. }
            | Op::Upgrade { s }
            | Op::WsFrame { s, .. }
            | Op::WsClosed { s, .. }
            | Op::PostFailed { s, .. }
            | Op::WsFailed { s, .. }
            | Op::Hold { s, .. }
            | Op::Send { s, .. }
            | Op::Close { s }
            | Op::Timeout { s } => index(s, n),
            Op::Advance(_) | Op::Open { .. } | Op::Route { .. } => unreachable!(),
        };
        let id = world.fresh_id();
        let t = &mut world.sessions[s];
        match op {
            Op::Poll { .. } => {
                let request = RequestId(id);
                t.polls.insert(request, Poll::Pending);
                t.session.handle_input(now, Input::Poll(request));
            }
            Op::PollAborted { request, .. } => {
                let mut known: Vec<u64> = t.polls.keys().map(|r| r.0).collect();
                known.sort_unstable();
                let request = RequestId(request.pick(&known));
                aborted = Some(request);
                t.session.handle_input(now, Input::PollAborted(request));
            }
            Op::Post { body, .. } => {
                let request = RequestId(id);
                t.posts.insert(request);
                post = Some(request);
                let body = body.to_body(max_payload);
                // A body that may be a v3 binary payload is posted as one.
                let input = if matches!(body.first(), Some(0 | 1)) {
                    Input::BinaryPost { request, body }
                } else {
                    Input::Post { request, body }
                };
                t.session.handle_input(now, input);
            }
            Op::Upgrade { .. } => {
                t.ws.push(id);
                t.session.handle_input(now, Input::Upgrade(WsId(id)));
            }
            Op::WsFrame { ws, frame, .. } => {
                let ws = WsId(ws.pick(&t.ws));
                t.session.handle_input(
                    now,
                    Input::WsFrame {
                        ws,
                        frame: frame.to_frame(max_payload),
                    },
                );
            }
            Op::WsClosed { ws, .. } => {
                let ws = WsId(ws.pick(&t.ws));
                t.session.handle_input(now, Input::WsClosed(ws));
            }
            Op::PostFailed { failure, .. } => {
                let request = RequestId(id);
                t.posts.insert(request);
                post = Some(request);
                let failure = match failure % 4 {
                    0 => PostFailure::Timeout,
                    1 => PostFailure::TooManyChunks,
                    2 => PostFailure::Aborted,
                    _ => PostFailure::BinaryContent,
                };
                t.session
                    .handle_input(now, Input::PostFailed { request, failure });
            }
            Op::WsFailed { ws, too_large, .. } => {
                let ws = WsId(ws.pick(&t.ws));
                let failure = if *too_large {
                    WsFailure::TooLarge
                } else {
                    WsFailure::Invalid
                };
                t.session.handle_input(now, Input::WsFailed { ws, failure });
            }
            Op::Hold { hold, .. } => {
                t.holding = *hold;
                t.session.hold_messages(now, *hold);
            }
            Op::Send { message, .. } => {
                let was_closed = t.session.is_closed();
                // A timer due now fires first: a PING it queues (and
                // hands out at once over WebSocket) takes the room too.
                let timer_due = t.session.poll_timeout().is_some_and(|at| at <= now);
                match t.session.send(now, message.to_message()) {
                    Ok(()) => assert!(!t.session.is_closed()),
                    Err(SendError::Closed) => {}
                    Err(SendError::BufferFull) => {
                        assert!(
                            t.session.buffered() >= t.max_buffered || timer_due,
                            "BufferFull with room"
                        )
                    }
                    Err(other) => panic!("unexpected {other:?}"),
                }
                if was_closed {
                    assert!(t.session.is_closed());
                }
            }
            Op::Close { .. } => t.session.close(now),
            Op::Timeout { .. } => t.session.handle_input(now, Input::Timeout),
            Op::Advance(_) | Op::Open { .. } | Op::Route { .. } => unreachable!(),
        }
        t.check_step(now, post, aborted);
    }
});
