//! A client/server pair simulator with a virtual clock.
//!
//! The simulator wires a [`Client`] to a [`Server`] and its sessions through a
//! network model: every IO intent of either side becomes an event delivered
//! `latency` later, in FIFO order. Time only moves when the simulator moves it,
//! to the next event or timer, so a minute of heartbeats runs in microseconds
//! and every run is identical.
//!
//! Faults are injected by the tests: a partition drops everything in flight
//! and everything sent while it lasts; `inject_http` lets a test act as a
//! second, misbehaving client of the same session.

#![allow(dead_code)] // each test binary uses part of the simulator

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use engineio_proto::client::{self, Client, ClientConfig, HttpMethod};
use engineio_proto::server::{
    self, Method, Opening, Request, Route, Server, ServerConfig, Session,
};
use engineio_proto::{
    CloseReason, CountingSidGenerator, Frame, Instant, Message, RequestId, Sid, WsId,
};

/// Something in flight on the simulated network.
#[derive(Debug, Clone)]
enum Event {
    ServerHttp {
        request: RequestId,
        method: Method,
        query: String,
        body: Bytes,
    },
    ClientHttp {
        request: RequestId,
        status: u16,
        body: Bytes,
    },
    ServerWsConnect {
        ws: WsId,
        query: String,
    },
    ClientWsOpen(WsId),
    ServerWsFrame(WsId, Frame),
    ClientWsFrame(WsId, Frame),
    ServerWsClosed(WsId),
    ClientWsClosed(WsId),
}

/// What the application on each side saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Opened(Sid),
    Message(Message),
    Upgraded,
    UpgradeFailed,
    Closed(CloseReason),
}

/// An HTTP response a test-injected request received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedResponse {
    pub status: u16,
    pub body: Bytes,
}

pub struct Sim {
    pub now: Instant,
    pub latency: Duration,
    server: Server<CountingSidGenerator>,
    sessions: BTreeMap<Sid, Session>,
    /// Which session a server-side WebSocket belongs to.
    ws_sessions: BTreeMap<WsId, Sid>,
    pub client: Client,
    queue: VecDeque<(Instant, Event)>,
    /// While true, nothing is delivered and everything sent is lost.
    pub partitioned: bool,
    pub client_seen: Vec<Seen>,
    /// Server-side events per session, in order.
    pub server_seen: Vec<(Sid, Seen)>,
    /// Responses to requests injected with [`Sim::inject_http`].
    pub injected: BTreeMap<RequestId, InjectedResponse>,
    /// Every HTTP request the client made: (method, query).
    pub client_requests: Vec<(HttpMethod, String)>,
    /// When and why the (last) server session closed.
    server_close: Option<(Instant, CloseReason)>,
    /// When the client machine reported its close.
    pub client_closed_at: Option<Instant>,
    next_injected: u64,
}

impl Sim {
    pub fn new(server_config: ServerConfig, client_config: ClientConfig) -> Sim {
        Sim {
            now: Instant::from_millis(1_000),
            latency: Duration::from_millis(1),
            server: Server::new(server_config, CountingSidGenerator::default()),
            sessions: BTreeMap::new(),
            ws_sessions: BTreeMap::new(),
            client: Client::new(client_config),
            queue: VecDeque::new(),
            partitioned: false,
            client_seen: Vec::new(),
            server_seen: Vec::new(),
            injected: BTreeMap::new(),
            client_requests: Vec::new(),
            server_close: None,
            client_closed_at: None,
            next_injected: 1 << 40,
        }
    }

    /// Connects the client and runs until its session is open (or 5 s pass).
    pub fn connect(&mut self) {
        self.client.connect(self.now).expect("connect");
        self.drain_client();
        let deadline = self.now + Duration::from_secs(5);
        self.run_while(deadline, |sim| {
            !sim.client.is_open() && !sim.client.is_closed()
        });
        assert!(
            self.client.is_open(),
            "client did not open: {:?}",
            self.client_seen
        );
    }

    pub fn session(&self, sid: Sid) -> Option<&Session> {
        self.sessions.get(&sid)
    }

    pub fn session_mut(&mut self, sid: Sid) -> Option<&mut Session> {
        self.sessions.get_mut(&sid)
    }

    pub fn sid(&self) -> Sid {
        self.client.sid().expect("client has a session")
    }

    pub fn client_send(&mut self, message: impl Into<Message>) {
        self.client
            .send(self.now, message.into())
            .expect("client send");
        self.drain_client();
    }

    pub fn server_send(&mut self, message: impl Into<Message>) {
        let sid = self.sid();
        let now = self.now;
        self.sessions
            .get_mut(&sid)
            .expect("live session")
            .send(now, message.into())
            .expect("server send");
        self.drain_session(sid);
    }

    pub fn client_close(&mut self) {
        self.client.close(self.now);
        self.drain_client();
    }

    pub fn server_close(&mut self) {
        let sid = self.sid();
        let now = self.now;
        self.sessions
            .get_mut(&sid)
            .expect("live session")
            .close(now);
        self.drain_session(sid);
    }

    /// Sends an HTTP request to the server as a third party would, outside the
    /// client machine. Its response lands in [`Sim::injected`].
    pub fn inject_http(&mut self, method: Method, query: &str, body: &'static [u8]) -> RequestId {
        self.next_injected += 1;
        let request = RequestId(self.next_injected);
        self.send(Event::ServerHttp {
            request,
            method,
            query: query.to_string(),
            body: Bytes::from_static(body),
        });
        request
    }

    /// Messages the client application received.
    pub fn client_messages(&self) -> Vec<Message> {
        self.client_seen
            .iter()
            .filter_map(|s| match s {
                Seen::Message(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    /// Messages the server application received.
    pub fn server_messages(&self) -> Vec<Message> {
        self.server_seen
            .iter()
            .filter_map(|(_, s)| match s {
                Seen::Message(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn client_close_reason(&self) -> Option<CloseReason> {
        self.client_seen.iter().find_map(|s| match s {
            Seen::Closed(r) => Some(r.clone()),
            _ => None,
        })
    }

    pub fn server_close_reason(&self) -> Option<(Instant, CloseReason)> {
        self.server_close.clone()
    }

    /// Runs until `deadline`: delivers events and fires timers in time order.
    pub fn run_until(&mut self, deadline: Instant) {
        self.run_while(deadline, |_| true);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let deadline = self.now + d;
        self.run_until(deadline);
    }

    /// Runs until `deadline` or until `keep_going` returns false.
    pub fn run_while(&mut self, deadline: Instant, keep_going: impl Fn(&Sim) -> bool) {
        let mut steps = 0u32;
        while keep_going(self) {
            steps += 1;
            assert!(steps < 1_000_000, "simulation does not settle");
            let Some(next) = self.next_wakeup().filter(|&t| t <= deadline) else {
                break;
            };
            self.now = self.now.max(next);
            self.step();
        }
        if keep_going(self) {
            self.now = self.now.max(deadline);
        }
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let mut next = self.queue.front().map(|(t, _)| *t);
        for t in self
            .sessions
            .values()
            .filter_map(Session::poll_timeout)
            .chain(self.client.poll_timeout())
        {
            next = Some(next.map_or(t, |n: Instant| n.min(t)));
        }
        next
    }

    /// Delivers every event due now, then fires due timers on both sides.
    fn step(&mut self) {
        while let Some((at, _)) = self.queue.front() {
            if *at > self.now {
                break;
            }
            let (_, event) = self.queue.pop_front().expect("front exists");
            self.deliver(event);
        }
        let now = self.now;
        self.client.handle_input(now, client::Input::Timeout);
        self.drain_client();
        let sids: Vec<Sid> = self.sessions.keys().copied().collect();
        for sid in sids {
            if let Some(session) = self.sessions.get_mut(&sid) {
                session.handle_input(now, server::Input::Timeout);
            }
            self.drain_session(sid);
        }
    }

    fn send(&mut self, event: Event) {
        if !self.partitioned {
            self.queue.push_back((self.now + self.latency, event));
        }
    }

    fn deliver(&mut self, event: Event) {
        let now = self.now;
        match event {
            Event::ServerHttp {
                request,
                method,
                query,
                body,
            } => self.server_http(request, method, &query, body),
            Event::ServerWsConnect { ws, query } => self.server_ws_connect(ws, &query),
            Event::ServerWsFrame(ws, frame) => {
                if let Some(sid) = self.ws_sessions.get(&ws).copied() {
                    if let Some(session) = self.sessions.get_mut(&sid) {
                        session.handle_input(now, server::Input::WsFrame { ws, frame });
                    }
                    self.drain_session(sid);
                }
            }
            Event::ServerWsClosed(ws) => {
                if let Some(sid) = self.ws_sessions.remove(&ws) {
                    if let Some(session) = self.sessions.get_mut(&sid) {
                        session.handle_input(now, server::Input::WsClosed(ws));
                    }
                    self.drain_session(sid);
                }
            }
            Event::ClientHttp {
                request,
                status,
                body,
            } => {
                if request.0 > 1 << 40 {
                    self.injected
                        .insert(request, InjectedResponse { status, body });
                } else {
                    self.client.handle_input(
                        now,
                        client::Input::HttpResponse {
                            request,
                            status,
                            body,
                        },
                    );
                    self.drain_client();
                }
            }
            Event::ClientWsOpen(ws) => {
                self.client.handle_input(now, client::Input::WsOpen(ws));
                self.drain_client();
            }
            Event::ClientWsFrame(ws, frame) => {
                self.client
                    .handle_input(now, client::Input::WsFrame { ws, frame });
                self.drain_client();
            }
            Event::ClientWsClosed(ws) => {
                self.client.handle_input(now, client::Input::WsClosed(ws));
                self.drain_client();
            }
        }
    }

    fn server_http(&mut self, request: RequestId, method: Method, query: &str, body: Bytes) {
        let now = self.now;
        let route = self.server.route(&Request {
            method,
            query,
            websocket: false,
        });
        let sid = match route {
            Ok(Route::Handshake(..)) => {
                let session = self.server.open_session(now, Opening::Polling(request));
                let sid = session.sid();
                self.sessions.insert(sid, session);
                sid
            }
            Ok(Route::Poll(sid)) | Ok(Route::Post(sid)) if self.sessions.contains_key(&sid) => {
                let session = self.sessions.get_mut(&sid).expect("checked");
                if method == Method::Get {
                    session.handle_input(now, server::Input::Poll(request));
                } else {
                    session.handle_input(now, server::Input::Post { request, body });
                }
                sid
            }
            Ok(_) => return self.refuse(request, server::RequestError::UnknownSid),
            Err(error) => return self.refuse(request, error),
        };
        self.drain_session(sid);
    }

    fn refuse(&mut self, request: RequestId, error: server::RequestError) {
        let response = error.response();
        self.send(Event::ClientHttp {
            request,
            status: response.status,
            body: response.body,
        });
    }

    fn server_ws_connect(&mut self, ws: WsId, query: &str) {
        let now = self.now;
        let route = self.server.route(&Request {
            method: Method::Get,
            query,
            websocket: true,
        });
        let sid = match route {
            Ok(Route::Handshake(..)) => {
                self.send(Event::ClientWsOpen(ws));
                let session = self.server.open_session(now, Opening::WebSocket(ws));
                let sid = session.sid();
                self.sessions.insert(sid, session);
                sid
            }
            Ok(Route::Upgrade(sid)) if self.sessions.contains_key(&sid) => {
                self.send(Event::ClientWsOpen(ws));
                self.sessions
                    .get_mut(&sid)
                    .expect("checked")
                    .handle_input(now, server::Input::Upgrade(ws));
                sid
            }
            _ => return self.send(Event::ClientWsClosed(ws)),
        };
        self.ws_sessions.insert(ws, sid);
        self.drain_session(sid);
    }

    fn drain_session(&mut self, sid: Sid) {
        let Some(session) = self.sessions.get_mut(&sid) else {
            return;
        };
        let mut outputs = Vec::new();
        while let Some(output) = session.poll_output() {
            outputs.push(output);
        }
        let closed = session.is_closed();
        for output in outputs {
            match output {
                server::Output::Respond { request, response } => self.send(Event::ClientHttp {
                    request,
                    status: response.status,
                    body: response.body,
                }),
                server::Output::WsSend { ws, frame, .. } => {
                    self.send(Event::ClientWsFrame(ws, frame))
                }
                server::Output::WsClose { ws } => {
                    if self.ws_sessions.remove(&ws).is_some() {
                        self.send(Event::ClientWsClosed(ws));
                    }
                }
                server::Output::Message(m) => self.server_seen.push((sid, Seen::Message(m))),
                server::Output::Upgraded => self.server_seen.push((sid, Seen::Upgraded)),
                server::Output::Closed(reason) => {
                    self.server_close = Some((self.now, reason.clone()));
                    self.server_seen.push((sid, Seen::Closed(reason)));
                }
            }
        }
        if closed {
            self.sessions.remove(&sid);
        }
    }

    fn drain_client(&mut self) {
        while let Some(output) = self.client.poll_output() {
            match output {
                client::Output::HttpRequest {
                    request,
                    method,
                    query,
                    body,
                } => {
                    self.client_requests.push((method, query.to_string()));
                    let method = match method {
                        HttpMethod::Get => Method::Get,
                        HttpMethod::Post => Method::Post,
                    };
                    self.send(Event::ServerHttp {
                        request,
                        method,
                        query: query.to_string(),
                        body,
                    });
                }
                client::Output::WsConnect { ws, query } => self.send(Event::ServerWsConnect {
                    ws,
                    query: query.to_string(),
                }),
                client::Output::WsSend { ws, frame, .. } => {
                    self.send(Event::ServerWsFrame(ws, frame))
                }
                client::Output::WsClose { ws } => self.send(Event::ServerWsClosed(ws)),
                client::Output::Opened(handshake) => {
                    self.client_seen.push(Seen::Opened(handshake.sid))
                }
                client::Output::Message(m) => self.client_seen.push(Seen::Message(m)),
                client::Output::Upgraded => self.client_seen.push(Seen::Upgraded),
                client::Output::UpgradeFailed => self.client_seen.push(Seen::UpgradeFailed),
                client::Output::Closed(reason) => {
                    self.client_closed_at = Some(self.now);
                    self.client_seen.push(Seen::Closed(reason));
                }
            }
        }
    }
}
