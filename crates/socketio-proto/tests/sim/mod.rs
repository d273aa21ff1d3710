//! A Socket.IO client/server pair on a simulated network and a virtual clock.
//!
//! The server side is an Engine.IO router plus one [`Connection`] per session
//! and a small application: namespaces `/` and `/chat` are open, `/private`
//! wants `{"token":"secret"}` (a middleware-style refusal otherwise), every
//! other namespace is refused as Node refuses unknown ones. The application
//! echoes `echo` events, answers events that ask for an ack with their own
//! arguments, and keeps a log of what it received.
//!
//! Faults: `server_down` makes every request and WebSocket fail at once, as a
//! stopped server would; `drop_connections` kills every live session.

#![allow(dead_code)] // each test binary uses part of the simulator

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use engineio_proto::client::{self as eio_client, HttpMethod};
use engineio_proto::server::{self as eio, Method, Opening, Request, Route, Server, ServerConfig};
use engineio_proto::{
    CountingSidGenerator, Frame, Instant, RequestId, Sid, SidGenerator, Str, WsId,
};
use socketio_proto::backoff::SeededRandom;
use socketio_proto::client::{self, ClientConfig, ClientConnection};
use socketio_proto::recovery::{self, RecoveryConfig, RecoveryStore};
use socketio_proto::server::{self as sio, Connection, ConnectionConfig};
use socketio_proto::{AckId, Packet, PacketKind};

#[derive(Debug, Clone)]
enum Event {
    ServerHttp(RequestId, Method, String, Bytes),
    ClientHttp(RequestId, u16, Bytes),
    ClientHttpError(RequestId),
    ServerWsConnect(WsId, String),
    ClientWsOpen(WsId),
    ServerWsFrame(WsId, Frame),
    ClientWsFrame(WsId, Frame),
    ServerWsClosed(WsId),
    ClientWsClosed(WsId),
}

/// What the server application saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerSaw {
    Connected {
        nsp: String,
        auth: Option<String>,
    },
    Event {
        nsp: String,
        data: String,
        attachments: usize,
    },
    Ack {
        nsp: String,
        id: AckId,
        data: Option<String>,
    },
    AckTimeout {
        nsp: String,
        id: AckId,
    },
    /// The socket went before the answer.
    AckDisconnected {
        nsp: String,
        id: AckId,
    },
    Disconnected {
        nsp: String,
        reason: String,
    },
}

pub struct Sim {
    pub now: Instant,
    pub latency: Duration,
    engine: Server<CountingSidGenerator>,
    conns: BTreeMap<Sid, Connection>,
    ws_conns: BTreeMap<WsId, Sid>,
    socket_ids: CountingSidGenerator,
    pub client: ClientConnection<SeededRandom>,
    queue: VecDeque<(Instant, Event)>,
    /// While true the server refuses everything at once.
    pub server_down: bool,
    pub client_saw: Vec<client::Output>,
    pub server_saw: Vec<ServerSaw>,
    /// Server-side sockets: (engine sid, namespace) → socket id.
    pub sockets: BTreeMap<(Sid, String), Sid>,
    /// HTTP requests the server holds (parked polls), failed by a crash.
    held_requests: std::collections::BTreeSet<RequestId>,
    /// When each reconnection attempt started.
    pub attempt_times: Vec<Instant>,
    /// Connection state recovery for `/`, when on.
    pub recovery: Option<RecoveryStore<()>>,
    /// Private ids of live sockets: (engine sid, namespace) → pid.
    pids: BTreeMap<(Sid, String), Str>,
    next_pid: u64,
    /// While true every event on the network is lost, both ways.
    pub partitioned: bool,
}

pub fn server_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.ping_interval = Duration::from_millis(300);
    config.ping_timeout = Duration::from_millis(200);
    config
}

impl Sim {
    pub fn new(client_config: ClientConfig) -> Sim {
        Sim {
            now: Instant::from_millis(1_000),
            latency: Duration::from_millis(1),
            engine: Server::new(server_config(), CountingSidGenerator::default()),
            conns: BTreeMap::new(),
            ws_conns: BTreeMap::new(),
            socket_ids: CountingSidGenerator::default(),
            client: ClientConnection::new(client_config, SeededRandom::new(42)),
            queue: VecDeque::new(),
            server_down: false,
            client_saw: Vec::new(),
            server_saw: Vec::new(),
            sockets: BTreeMap::new(),
            held_requests: Default::default(),
            attempt_times: Vec::new(),
            recovery: None,
            pids: BTreeMap::new(),
            next_pid: 0,
            partitioned: false,
        }
    }

    /// A simulator whose server recovers `/` sessions (Node's
    /// `connectionStateRecovery`).
    pub fn with_recovery(client_config: ClientConfig) -> Sim {
        let mut sim = Sim::new(client_config);
        sim.recovery = Some(RecoveryStore::new(
            RecoveryConfig::default(),
            Str::from("run1-"),
        ));
        sim
    }

    /// Emits to the room of socket `socket` on `/`, recording the packet for
    /// recovery: delivered now if the socket is live, replayed otherwise.
    pub fn server_emit_to_socket(&mut self, socket: Sid, data: &str) {
        let now = self.now;
        let room = Str::from(socket.to_string());
        let data = match self.recovery.as_mut() {
            Some(store) => {
                store
                    .record(now, &Str::from(data), &[], &[room], &[])
                    .unwrap()
                    .data
            }
            None => Str::from(data),
        };
        let live = self
            .sockets
            .iter()
            .find(|(_, s)| **s == socket)
            .map(|((sid, _), _)| *sid);
        if let Some(conn_sid) = live {
            if let Some(conn) = self.conns.get_mut(&conn_sid) {
                let packet = Packet::new(PacketKind::Event, Str::from("/"), Some(data));
                let _ = conn.emit(now, "/", &packet.encode());
            }
            self.drain_conn(conn_sid);
        }
    }

    // ---- client-side commands ----

    pub fn join(&mut self, nsp: &str, auth: Option<&str>) {
        self.client
            .join(self.now, Str::from(nsp), auth.map(Str::from), false)
            .unwrap();
        self.drain_client();
    }

    pub fn client_emit(&mut self, nsp: &str, data: &str) {
        let packet = Packet::new(PacketKind::Event, Str::from(nsp), Some(Str::from(data)));
        self.client.emit(self.now, packet, false).unwrap();
        self.drain_client();
    }

    pub fn client_emit_binary(&mut self, nsp: &str, data: &str, attachments: Vec<Bytes>) {
        let packet = Packet {
            attachments,
            ..Packet::new(PacketKind::Event, Str::from(nsp), Some(Str::from(data)))
        };
        self.client.emit(self.now, packet, false).unwrap();
        self.drain_client();
    }

    pub fn client_emit_with_ack(
        &mut self,
        nsp: &str,
        data: &str,
        timeout: Option<Duration>,
    ) -> AckId {
        let packet = Packet::new(PacketKind::Event, Str::from(nsp), Some(Str::from(data)));
        let id = self
            .client
            .emit_with_ack(self.now, packet, timeout)
            .unwrap();
        self.drain_client();
        id
    }

    // ---- server-side commands ----

    /// The single live server connection.
    pub fn server_conn(&mut self) -> (Sid, &mut Connection) {
        let (sid, conn) = self.conns.iter_mut().next().expect("a live connection");
        (*sid, conn)
    }

    pub fn server_emit(&mut self, nsp: &str, data: &str) {
        let now = self.now;
        let (sid, conn) = self.server_conn();
        let packet = Packet::new(PacketKind::Event, Str::from(nsp), Some(Str::from(data)));
        conn.emit(now, nsp, &packet.encode()).unwrap();
        self.drain_conn(sid);
    }

    pub fn server_emit_with_ack(&mut self, nsp: &str, data: &str, timeout: Duration) -> AckId {
        let now = self.now;
        let (sid, conn) = self.server_conn();
        let packet = Packet::new(PacketKind::Event, Str::from(nsp), Some(Str::from(data)));
        let id = conn.emit_with_ack(now, packet, Some(timeout)).unwrap();
        self.drain_conn(sid);
        id
    }

    pub fn server_disconnect(&mut self, nsp: &str) {
        let now = self.now;
        let (sid, conn) = self.server_conn();
        conn.disconnect(now, nsp).unwrap();
        self.drain_conn(sid);
    }

    /// Kills every session at once, as a crashing server would.
    pub fn drop_connections(&mut self) {
        self.conns.clear();
        for request in std::mem::take(&mut self.held_requests) {
            self.send(Event::ClientHttpError(request));
        }
        let sockets: Vec<WsId> = self.ws_conns.keys().copied().collect();
        for ws in sockets {
            self.send(Event::ClientWsClosed(ws));
        }
        self.ws_conns.clear();
    }

    // ---- observation ----

    pub fn client_events(&self) -> Vec<(String, String)> {
        self.client_saw
            .iter()
            .filter_map(|o| match o {
                client::Output::Event { nsp, data, .. } => {
                    Some((nsp.to_string(), data.to_string()))
                }
                _ => None,
            })
            .collect()
    }

    pub fn server_events(&self) -> Vec<(String, String)> {
        self.server_saw
            .iter()
            .filter_map(|s| match s {
                ServerSaw::Event { nsp, data, .. } => Some((nsp.clone(), data.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn connected_count(&self) -> usize {
        self.client_saw
            .iter()
            .filter(|o| matches!(o, client::Output::Connected { .. }))
            .count()
    }

    // ---- the loop ----

    pub fn run_for(&mut self, d: Duration) {
        // Commands called on the machines directly left outputs behind.
        self.drain_client();
        let sids: Vec<Sid> = self.conns.keys().copied().collect();
        for sid in sids {
            self.drain_conn(sid);
        }
        let deadline = self.now + d;
        let mut steps = 0u32;
        loop {
            steps += 1;
            assert!(steps < 2_000_000, "simulation does not settle");
            let next = [
                self.queue.front().map(|(t, _)| *t),
                self.client.poll_timeout(),
                self.conns
                    .values()
                    .filter_map(Connection::poll_timeout)
                    .min(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= deadline => {
                    self.now = self.now.max(t);
                    self.step();
                }
                _ => break,
            }
        }
        self.now = deadline;
    }

    fn step(&mut self) {
        while self.queue.front().is_some_and(|(t, _)| *t <= self.now) {
            let (_, event) = self.queue.pop_front().expect("front");
            self.deliver(event);
        }
        let now = self.now;
        self.client.handle_input(now, client::Input::Timeout);
        self.drain_client();
        let sids: Vec<Sid> = self.conns.keys().copied().collect();
        for sid in sids {
            if let Some(conn) = self.conns.get_mut(&sid) {
                conn.handle_input(now, sio::Input::Timeout);
            }
            self.drain_conn(sid);
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
            Event::ServerHttp(request, method, query, body) => {
                if self.server_down {
                    return self.send(Event::ClientHttpError(request));
                }
                self.server_http(request, method, &query, body);
            }
            Event::ServerWsConnect(ws, query) => {
                if self.server_down {
                    return self.send(Event::ClientWsClosed(ws));
                }
                self.server_ws(ws, &query);
            }
            Event::ServerWsFrame(ws, frame) => {
                if let Some(sid) = self.ws_conns.get(&ws).copied() {
                    if let Some(conn) = self.conns.get_mut(&sid) {
                        conn.handle_input(now, sio::Input::WsFrame { ws, frame });
                    }
                    self.drain_conn(sid);
                }
            }
            Event::ServerWsClosed(ws) => {
                if let Some(sid) = self.ws_conns.remove(&ws) {
                    if let Some(conn) = self.conns.get_mut(&sid) {
                        conn.handle_input(now, sio::Input::WsClosed(ws));
                    }
                    self.drain_conn(sid);
                }
            }
            Event::ClientHttp(request, status, body) => {
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
            Event::ClientHttpError(request) => {
                self.client
                    .handle_input(now, client::Input::HttpError(request));
                self.drain_client();
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
        self.held_requests.insert(request);
        let route = self.engine.route(&Request {
            method,
            query,
            websocket: false,
        });
        let sid = match route {
            Ok(Route::Handshake(..)) => {
                let session = self.engine.open_session(now, Opening::Polling(request));
                let sid = session.sid();
                self.conns.insert(
                    sid,
                    Connection::new(now, session, &ConnectionConfig::default()),
                );
                sid
            }
            Ok(Route::Poll(sid) | Route::Post(sid)) if self.conns.contains_key(&sid) => {
                let conn = self.conns.get_mut(&sid).expect("checked");
                if method == Method::Get {
                    conn.handle_input(now, sio::Input::Poll(request));
                } else {
                    conn.handle_input(now, sio::Input::Post { request, body });
                }
                sid
            }
            other => {
                self.held_requests.remove(&request);
                let response = other
                    .err()
                    .unwrap_or(eio::RequestError::UnknownSid)
                    .response();
                return self.send(Event::ClientHttp(request, response.status, response.body));
            }
        };
        self.drain_conn(sid);
    }

    fn server_ws(&mut self, ws: WsId, query: &str) {
        let now = self.now;
        let route = self.engine.route(&Request {
            method: Method::Get,
            query,
            websocket: true,
        });
        let sid = match route {
            Ok(Route::Handshake(..)) => {
                self.send(Event::ClientWsOpen(ws));
                let session = self.engine.open_session(now, Opening::WebSocket(ws));
                let sid = session.sid();
                self.conns.insert(
                    sid,
                    Connection::new(now, session, &ConnectionConfig::default()),
                );
                sid
            }
            Ok(Route::Upgrade(sid)) if self.conns.contains_key(&sid) => {
                self.send(Event::ClientWsOpen(ws));
                self.conns
                    .get_mut(&sid)
                    .expect("checked")
                    .handle_input(now, sio::Input::Upgrade(ws));
                sid
            }
            _ => return self.send(Event::ClientWsClosed(ws)),
        };
        self.ws_conns.insert(ws, sid);
        self.drain_conn(sid);
    }

    /// Carries out a connection's outputs and plays the server application.
    fn drain_conn(&mut self, sid: Sid) {
        let now = self.now;
        loop {
            let Some(conn) = self.conns.get_mut(&sid) else {
                return;
            };
            let Some(output) = conn.poll_output() else {
                break;
            };
            match output {
                sio::Output::Transport(eio::Output::Respond { request, response }) => {
                    self.held_requests.remove(&request);
                    self.send(Event::ClientHttp(request, response.status, response.body))
                }
                sio::Output::Transport(eio::Output::WsSend { ws, frame, .. }) => {
                    self.send(Event::ClientWsFrame(ws, frame))
                }
                sio::Output::Transport(eio::Output::WsClose { ws }) => {
                    if self.ws_conns.remove(&ws).is_some() {
                        self.send(Event::ClientWsClosed(ws));
                    }
                }
                sio::Output::Transport(_) | sio::Output::Upgraded => {}
                sio::Output::Connect { nsp, auth } => {
                    let decision = match nsp.as_str() {
                        "/" | "/chat" => Ok(()),
                        "/private" if auth.as_deref() == Some(r#"{"token":"secret"}"#) => Ok(()),
                        "/private" => {
                            Err(r#"{"message":"unauthorized","data":{"reason":"bad token"}}"#)
                        }
                        _ => Err(r#"{"message":"Invalid namespace"}"#),
                    };
                    match decision {
                        Ok(()) if self.recovery.is_some() && nsp.as_str() == "/" => {
                            let store = self.recovery.as_mut().expect("checked");
                            let restored = auth
                                .as_deref()
                                .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
                                .and_then(|a| {
                                    let pid = a.get("pid")?.as_str()?.to_string();
                                    let offset = a.get("offset")?.as_str()?.to_string();
                                    store.restore(now, &pid, &offset)
                                });
                            let (socket, pid, missed) = match restored {
                                Some(r) => (r.sid, r.pid, r.missed),
                                None => {
                                    self.next_pid += 1;
                                    (
                                        self.socket_ids.generate(),
                                        Str::from(format!("pid-{}", self.next_pid)),
                                        vec![],
                                    )
                                }
                            };
                            let conn = self.conns.get_mut(&sid).expect("live");
                            conn.accept(now, &nsp, socket, Some(&pid)).unwrap();
                            for packet in missed {
                                let event = Packet {
                                    attachments: packet.attachments,
                                    ..Packet::new(PacketKind::Event, nsp.clone(), Some(packet.data))
                                };
                                conn.emit(now, &nsp, &event.encode()).unwrap();
                            }
                            self.sockets.insert((sid, nsp.to_string()), socket);
                            self.pids.insert((sid, nsp.to_string()), pid);
                            self.server_saw.push(ServerSaw::Connected {
                                nsp: nsp.to_string(),
                                auth: auth.map(|a| a.to_string()),
                            });
                        }
                        Ok(()) => {
                            let socket = self.socket_ids.generate();
                            conn.accept(now, &nsp, socket, None).unwrap();
                            self.sockets.insert((sid, nsp.to_string()), socket);
                            self.server_saw.push(ServerSaw::Connected {
                                nsp: nsp.to_string(),
                                auth: auth.map(|a| a.to_string()),
                            });
                        }
                        Err(data) => conn.reject(now, &nsp, Str::from(data)).unwrap(),
                    }
                }
                sio::Output::Event {
                    nsp,
                    data,
                    attachments,
                    ack,
                } => {
                    self.server_saw.push(ServerSaw::Event {
                        nsp: nsp.to_string(),
                        data: data.to_string(),
                        attachments: attachments.len(),
                    });
                    if let Some(id) = ack {
                        // Answer with the arguments after the event name.
                        let args = after_event_name(&data);
                        conn.ack(now, &nsp, id, Str::from(args), attachments)
                            .unwrap();
                    } else if data.starts_with(r#"["echo""#) {
                        let packet = Packet {
                            attachments,
                            ..Packet::new(PacketKind::Event, nsp.clone(), Some(data))
                        };
                        conn.emit(now, &nsp, &packet.encode()).unwrap();
                    }
                }
                sio::Output::Ack { nsp, id, data, .. } => self.server_saw.push(ServerSaw::Ack {
                    nsp: nsp.to_string(),
                    id,
                    data: data.map(|d| d.to_string()),
                }),
                sio::Output::AckFailed { nsp, id, error } => {
                    let nsp = nsp.to_string();
                    self.server_saw.push(match error {
                        socketio_proto::AckError::Timeout => ServerSaw::AckTimeout { nsp, id },
                        _ => ServerSaw::AckDisconnected { nsp, id },
                    })
                }
                sio::Output::Disconnect { nsp, reason } => {
                    let key = (sid, nsp.to_string());
                    let socket = self.sockets.remove(&key);
                    let pid = self.pids.remove(&key);
                    if let (Some(store), Some(pid), Some(socket)) =
                        (self.recovery.as_mut(), pid, socket)
                    {
                        if recovery::is_recoverable(&reason) {
                            store.persist(
                                now,
                                pid,
                                socket,
                                vec![Str::from(socket.to_string())],
                                (),
                            );
                        }
                    }
                    self.server_saw.push(ServerSaw::Disconnected {
                        nsp: nsp.to_string(),
                        reason: reason.as_node_str().to_string(),
                    })
                }
                sio::Output::Closed => {
                    self.conns.remove(&sid);
                    return;
                }
            }
        }
    }

    fn drain_client(&mut self) {
        while let Some(output) = self.client.poll_output() {
            match output {
                client::Output::Transport(eio_client::Output::HttpRequest {
                    request,
                    method,
                    query,
                    body,
                }) => {
                    let method = if method == HttpMethod::Get {
                        Method::Get
                    } else {
                        Method::Post
                    };
                    self.send(Event::ServerHttp(request, method, query.to_string(), body));
                }
                client::Output::Transport(eio_client::Output::WsConnect { ws, query }) => {
                    self.send(Event::ServerWsConnect(ws, query.to_string()))
                }
                client::Output::Transport(eio_client::Output::WsSend { ws, frame, .. }) => {
                    self.send(Event::ServerWsFrame(ws, frame))
                }
                client::Output::Transport(eio_client::Output::WsClose { ws }) => {
                    self.send(Event::ServerWsClosed(ws))
                }
                client::Output::Transport(_) => {}
                other => {
                    if let client::Output::ReconnectAttempt(_) = other {
                        self.attempt_times.push(self.now);
                    }
                    self.client_saw.push(other)
                }
            }
        }
    }
}

/// `["name",a,b]` → `[a,b]` (enough for the simulator's simple payloads).
fn after_event_name(data: &str) -> String {
    match data.find(',') {
        Some(comma) => format!("[{}", &data[comma + 1..]),
        None => "[]".to_string(),
    }
}
