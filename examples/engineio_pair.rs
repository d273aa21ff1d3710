//! An Engine.IO client and server talking in memory, with no async runtime
//! and no network: the sans-IO machines of `engineio-proto` driven by one
//! plain loop on a virtual clock.
//!
//! The client opens a session over HTTP long-polling, exchanges text and
//! binary messages, upgrades to WebSocket, keeps the session alive through a
//! minute of heartbeats (in microseconds of real time) and closes it. Every
//! request, response and frame is printed as it would appear on the wire.
//!
//! Run it with `cargo run -p examples --example engineio-pair`.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use engineio_proto::client::{self, Client, ClientConfig, HttpMethod};
use engineio_proto::server::{
    self, Method, Opening, Request, Route, Server, ServerConfig, Session,
};
use engineio_proto::{CountingSidGenerator, Frame, Instant, Message, RequestId, WsId};

/// Something on its way to the server (`Server*`) or the client (`Client*`).
enum Wire {
    ServerHttp(RequestId, HttpMethod, String, Bytes),
    ClientHttp(RequestId, u16, Bytes),
    ServerWsConnect(WsId, String),
    ClientWsOpen(WsId),
    ServerFrame(WsId, Frame),
    ClientFrame(WsId, Frame),
    ServerWsClose(WsId),
    ClientWsClose(WsId),
}

/// The whole world: one client, one server with (at most) one session, the
/// wire between them and the clock.
struct World {
    now: Instant,
    client: Client,
    server: Server<CountingSidGenerator>,
    session: Option<Session>,
    wire: VecDeque<Wire>,
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\u{1e}', "\\x1e")
}

fn show_frame(frame: &Frame) -> String {
    match frame {
        Frame::Text(text) => format!("text {:?}", text.as_str()),
        Frame::Binary(data) => format!("binary {data:?}"),
    }
}

impl World {
    /// Moves everything the client wants done onto the wire.
    fn drain_client(&mut self) {
        while let Some(output) = self.client.poll_output() {
            match output {
                client::Output::HttpRequest {
                    request,
                    method,
                    query,
                    body,
                } => {
                    println!("  client -> {method:?} ?{query} {}", show(&body));
                    self.wire
                        .push_back(Wire::ServerHttp(request, method, query.to_string(), body));
                }
                client::Output::WsConnect { ws, query } => {
                    println!("  client -> WebSocket ?{query}");
                    self.wire
                        .push_back(Wire::ServerWsConnect(ws, query.to_string()));
                }
                client::Output::WsSend { ws, frame, .. } => {
                    println!("  client -> {}", show_frame(&frame));
                    self.wire.push_back(Wire::ServerFrame(ws, frame));
                }
                client::Output::WsClose { ws } => self.wire.push_back(Wire::ServerWsClose(ws)),
                client::Output::Opened(handshake) => {
                    println!("[client] open, sid {}", handshake.sid)
                }
                client::Output::Message(message) => println!("[client] got {message:?}"),
                client::Output::Upgraded => println!("[client] upgraded to websocket"),
                client::Output::UpgradeFailed => println!("[client] upgrade failed"),
                client::Output::Closed(reason) => println!("[client] closed: {reason}"),
            }
        }
    }

    /// Moves everything the server session wants done onto the wire.
    fn drain_session(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        while let Some(output) = session.poll_output() {
            match output {
                server::Output::Respond { request, response } => {
                    println!("  server -> {} {}", response.status, show(&response.body));
                    self.wire
                        .push_back(Wire::ClientHttp(request, response.status, response.body));
                }
                server::Output::WsSend { ws, frame, .. } => {
                    println!("  server -> {}", show_frame(&frame));
                    self.wire.push_back(Wire::ClientFrame(ws, frame));
                }
                server::Output::WsClose { ws } => self.wire.push_back(Wire::ClientWsClose(ws)),
                server::Output::Message(message) => {
                    println!("[server] got {message:?}");
                    // The application: echo text back, upper-cased.
                    if let Message::Text(text) = message {
                        let reply = Message::from(text.to_uppercase());
                        session.send(self.now, reply).expect("session open");
                    }
                }
                server::Output::Upgraded => println!("[server] session upgraded"),
                server::Output::Closed(reason) => println!("[server] session closed: {reason}"),
            }
        }
        if session.is_closed() {
            self.session = None;
        }
    }

    /// Delivers one thing from the wire to its side.
    fn deliver(&mut self, item: Wire) {
        let now = self.now;
        match item {
            Wire::ServerHttp(request, method, query, body) => {
                let method = if method == HttpMethod::Get {
                    Method::Get
                } else {
                    Method::Post
                };
                let route = self.server.route(&Request {
                    method,
                    query: &query,
                    websocket: false,
                });
                match (route, self.session.as_mut()) {
                    (Ok(Route::Handshake(..)), _) => {
                        self.session =
                            Some(self.server.open_session(now, Opening::Polling(request)));
                    }
                    (Ok(Route::Poll(sid)), Some(session)) if sid == session.sid() => {
                        session.handle_input(now, server::Input::Poll(request))
                    }
                    (Ok(Route::Post(sid)), Some(session)) if sid == session.sid() => {
                        session.handle_input(now, server::Input::Post { request, body })
                    }
                    (other, _) => {
                        let error = other.err().unwrap_or(server::RequestError::UnknownSid);
                        let response = error.response();
                        self.wire.push_back(Wire::ClientHttp(
                            request,
                            response.status,
                            response.body,
                        ));
                    }
                }
                self.drain_session();
            }
            Wire::ServerWsConnect(ws, query) => {
                let route = self.server.route(&Request {
                    method: Method::Get,
                    query: &query,
                    websocket: true,
                });
                match (route, self.session.as_mut()) {
                    (Ok(Route::Upgrade(sid)), Some(session)) if sid == session.sid() => {
                        self.wire.push_back(Wire::ClientWsOpen(ws));
                        session.handle_input(now, server::Input::Upgrade(ws));
                    }
                    _ => self.wire.push_back(Wire::ClientWsClose(ws)),
                }
                self.drain_session();
            }
            Wire::ServerFrame(ws, frame) => {
                if let Some(session) = self.session.as_mut() {
                    session.handle_input(now, server::Input::WsFrame { ws, frame });
                }
                self.drain_session();
            }
            Wire::ServerWsClose(ws) => {
                if let Some(session) = self.session.as_mut() {
                    session.handle_input(now, server::Input::WsClosed(ws));
                }
                self.drain_session();
            }
            Wire::ClientHttp(request, status, body) => {
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
            Wire::ClientWsOpen(ws) => {
                self.client.handle_input(now, client::Input::WsOpen(ws));
                self.drain_client();
            }
            Wire::ClientFrame(ws, frame) => {
                self.client
                    .handle_input(now, client::Input::WsFrame { ws, frame });
                self.drain_client();
            }
            Wire::ClientWsClose(ws) => {
                self.client.handle_input(now, client::Input::WsClosed(ws));
                self.drain_client();
            }
        }
    }

    /// The run loop: deliver what is on the wire; when the wire is quiet,
    /// jump the clock to the earliest timer of either side and fire it.
    fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        loop {
            if let Some(item) = self.wire.pop_front() {
                self.deliver(item);
                continue;
            }
            let next_timer = [
                self.client.poll_timeout(),
                self.session.as_ref().and_then(Session::poll_timeout),
            ]
            .into_iter()
            .flatten()
            .min();
            match next_timer {
                Some(at) if at <= end => {
                    self.now = at;
                    self.client.handle_input(at, client::Input::Timeout);
                    self.drain_client();
                    if let Some(session) = self.session.as_mut() {
                        session.handle_input(at, server::Input::Timeout);
                    }
                    self.drain_session();
                }
                _ => break,
            }
        }
        self.now = end;
    }
}

fn main() {
    let mut server_config = ServerConfig::default();
    server_config.ping_interval = Duration::from_secs(25);
    server_config.ping_timeout = Duration::from_secs(20);
    let mut world = World {
        now: Instant::ZERO,
        client: Client::new(ClientConfig::default()),
        server: Server::new(server_config, CountingSidGenerator::default()),
        session: None,
        wire: VecDeque::new(),
    };

    println!("== handshake over long-polling, then the upgrade to WebSocket");
    world
        .client
        .connect(world.now)
        .expect("a transport is allowed");
    world
        .client
        .send(world.now, Message::from("hello from the client"))
        .expect("queued");
    world.drain_client();
    // The upgrading client's poll gets its NOOP one tick (100 ms) after the
    // probe, then the client switches.
    world.run_for(Duration::from_millis(150));

    println!("\n== messages over WebSocket, text and binary");
    world
        .client
        .send(world.now, Message::from("how are you?"))
        .expect("open");
    world
        .client
        .send(
            world.now,
            Message::Binary(Bytes::from_static(&[1, 2, 3, 4])),
        )
        .expect("open");
    world.drain_client();
    world.run_for(Duration::from_millis(10));

    println!("\n== one minute of heartbeats on the virtual clock");
    world.run_for(Duration::from_secs(60));
    assert!(
        world.client.is_open(),
        "the heartbeat keeps the session alive"
    );

    println!("\n== the client closes");
    world.client.close(world.now);
    world.drain_client();
    world.run_for(Duration::from_millis(10));
    assert!(world.client.is_closed() && world.session.is_none());
    println!(
        "\ndone: {} s of protocol time",
        world.now.since_epoch().as_secs()
    );
}
