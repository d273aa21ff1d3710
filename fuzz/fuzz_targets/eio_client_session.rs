//! The client machine under an arbitrary server and network, on a virtual
//! clock. After every input the outputs are drained and checked against the
//! machine's contract (see `Driver::check_step`).

#![no_main]

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use engineio_fuzz::{
    tracing, BodySpec, FrameSpec, HandshakeSpec, MessageSpec, PacketSpec, Pick, ReqPick, Status,
    MAX_OUTPUTS_PER_STEP,
};
use engineio_proto::client::{
    Client, ClientConfig, ConnectError, HttpMethod, Input, Output, SendError,
};
use engineio_proto::{Frame, Instant, Packet, RequestId, TransportKind, Transports, WsId};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

const MAX_OPS: usize = 512;

#[derive(Arbitrary, Debug)]
struct Config {
    transports: u8,
    upgrade: bool,
    max_buffered_packets: u8,
}

impl Config {
    fn build(&self) -> ClientConfig {
        let mut config = ClientConfig::default();
        config.transports = match self.transports % 8 {
            0 => Transports::POLLING,
            1 => Transports::WEBSOCKET,
            // Never valid: `connect` must refuse it.
            2 => Transports {
                polling: false,
                websocket: false,
            },
            _ => Transports::ALL,
        };
        config.upgrade = self.upgrade;
        config.max_buffered_packets = 1 + usize::from(self.max_buffered_packets % 24);
        config
    }
}

#[derive(Arbitrary, Debug)]
enum ResponseBody {
    /// `0{…}` then more packets, as a handshake GET returns.
    Handshake(HandshakeSpec, Vec<PacketSpec>),
    Body(BodySpec),
}

#[derive(Arbitrary, Debug)]
enum WsFrameSpec {
    Handshake(HandshakeSpec),
    Frame(FrameSpec),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Advance(u16),
    Connect,
    HttpResponse {
        request: ReqPick,
        status: Status,
        body: ResponseBody,
    },
    HttpError {
        request: ReqPick,
    },
    WsOpen {
        ws: Pick,
    },
    WsFrame {
        ws: Pick,
        frame: WsFrameSpec,
    },
    WsClosed {
        ws: Pick,
    },
    Send(MessageSpec),
    Close,
    Timeout,
}

#[derive(Arbitrary, Debug)]
struct Case {
    config: Config,
    ops: Vec<Op>,
}

/// What the driver knows of the machine, from its outputs.
#[derive(Default)]
struct Driver {
    now: Instant,
    requests: Vec<u64>,
    get: Option<RequestId>,
    post: Option<RequestId>,
    ws: Vec<u64>,
    ws_opened: HashSet<WsId>,
    ws_gone: HashSet<WsId>,
    opened: bool,
    upgraded: bool,
    upgrade_failed: bool,
    closed: bool,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

impl Driver {
    fn pick_request(&self, pick: ReqPick) -> RequestId {
        match pick {
            ReqPick::Get => self.get.unwrap_or(RequestId(pick_any(&self.requests))),
            ReqPick::Post => self.post.unwrap_or(RequestId(pick_any(&self.requests))),
            ReqPick::Any(p) => RequestId(p.pick(&self.requests)),
        }
    }

    /// The request's result is being handed in: it is no longer in flight.
    fn settle(&mut self, request: RequestId) {
        if self.get == Some(request) {
            self.get = None;
        }
        if self.post == Some(request) {
            self.post = None;
        }
    }

    fn check_step(&mut self, client: &mut Client) {
        let mut count = 0;
        let mut get_this_step = false;
        let mut closed_this_step = false;
        while let Some(output) = client.poll_output() {
            if tracing() {
                eprintln!("    -> {output:?}");
            }
            count += 1;
            assert!(count < MAX_OUTPUTS_PER_STEP, "unbounded outputs");
            match output {
                Output::HttpRequest {
                    request,
                    method,
                    query,
                    body,
                } => {
                    assert!(!self.closed, "HttpRequest after Closed");
                    assert_eq!(query.transport, TransportKind::Polling);
                    assert!(!self.requests.contains(&request.0), "request id reused");
                    self.requests.push(request.0);
                    match method {
                        HttpMethod::Get => {
                            assert!(body.is_empty());
                            assert!(self.get.is_none(), "two GETs in flight");
                            self.get = Some(request);
                            get_this_step = true;
                        }
                        HttpMethod::Post => {
                            assert!(!body.is_empty(), "empty POST");
                            assert!(self.opened, "POST before the handshake");
                            assert!(self.post.is_none(), "two POSTs in flight");
                            self.post = Some(request);
                        }
                    }
                }
                Output::WsConnect { ws, query } => {
                    assert!(!self.closed, "WsConnect after Closed");
                    assert_eq!(query.transport, TransportKind::WebSocket);
                    assert!(self.ws.is_empty(), "more than one WebSocket opened");
                    self.ws.push(ws.0);
                }
                Output::WsSend { ws, frame, .. } => {
                    assert!(!self.closed, "WsSend after Closed");
                    assert!(self.ws.contains(&ws.0), "WsSend on unknown {ws:?}");
                    assert!(self.ws_opened.contains(&ws), "WsSend before {ws:?} opened");
                    assert!(!self.ws_gone.contains(&ws), "WsSend on closed {ws:?}");
                    if let Frame::Text(text) = &frame {
                        assert!(
                            Packet::decode_text(text.clone()).is_ok(),
                            "bad frame {text:?}"
                        );
                    }
                }
                Output::WsClose { ws } => {
                    assert!(self.ws.contains(&ws.0), "WsClose of unknown {ws:?}");
                    self.ws_gone.insert(ws);
                }
                Output::Opened(_) => {
                    assert!(!self.closed && !self.opened, "Opened twice or after Closed");
                    self.opened = true;
                }
                Output::Message(_) => {
                    assert!(self.opened && !self.closed, "Message out of session")
                }
                Output::Upgraded => {
                    assert!(
                        !self.closed && !self.upgraded,
                        "Upgraded twice or after Closed"
                    );
                    assert!(!self.upgrade_failed);
                    assert!(
                        self.get.is_none() && self.post.is_none(),
                        "upgraded mid-request"
                    );
                    self.upgraded = true;
                }
                Output::UpgradeFailed => {
                    assert!(!self.upgraded && !self.upgrade_failed);
                    self.upgrade_failed = true;
                }
                Output::Closed(_) => {
                    assert!(!self.closed, "Closed emitted twice");
                    self.closed = true;
                    closed_this_step = true;
                    // Stop tracking what was in flight.
                    self.get = None;
                    self.post = None;
                }
            }
        }
        assert!(
            !(get_this_step && closed_this_step),
            "a GET was requested while closing"
        );
        assert_eq!(
            client.is_closed(),
            self.closed,
            "is_closed disagrees with Closed"
        );
        if self.closed {
            assert_eq!(client.poll_timeout(), None, "timer armed after Closed");
            assert!(!client.is_open());
        }
        if self.upgraded && !self.closed {
            assert_eq!(client.transport(), TransportKind::WebSocket);
        }
        if client.transport() == TransportKind::WebSocket {
            assert!(self.get.is_none() && self.post.is_none());
        }
    }
}

fn pick_any(known: &[u64]) -> u64 {
    known.last().copied().unwrap_or(0)
}

fn handshake_payload(spec: &HandshakeSpec, rest: &[PacketSpec]) -> Bytes {
    let rest: Vec<Packet> = rest.iter().take(64).map(PacketSpec::to_packet).collect();
    spec.payload(&rest)
}

fuzz_target!(|input: Case| {
    let config = input.config.build();
    let no_transport = !config.transports.polling && !config.transports.websocket;
    let mut client = Client::new(config);
    let mut driver = Driver::default();
    // Limit for `AroundLimit` specs; the server's maxPayload is unknown here.
    let limit = 1000;

    // Inputs before `connect` must be harmless.
    assert_eq!(
        client.send(driver.now, "early".into()),
        Err(SendError::Closed)
    );
    driver.check_step(&mut client);

    match client.connect(driver.now) {
        Ok(()) => assert!(!no_transport),
        Err(ConnectError::NoTransport) => assert!(no_transport),
        Err(other) => panic!("first connect failed: {other:?}"),
    }
    driver.check_step(&mut client);

    for op in input.ops.iter().take(MAX_OPS) {
        let now = driver.now;
        if tracing() {
            eprintln!("[{now:?}] {op:?}");
        }
        match op {
            Op::Advance(step) => {
                driver.now = now + ms(u64::from(*step % 5000));
                continue;
            }
            Op::Connect => {
                let result = client.connect(now);
                assert!(result.is_err(), "connect accepted twice");
            }
            Op::HttpResponse {
                request,
                status,
                body,
            } => {
                let request = driver.pick_request(*request);
                let status = status.code();
                let body = match body {
                    ResponseBody::Handshake(spec, rest) => handshake_payload(spec, rest),
                    ResponseBody::Body(spec) => spec.to_body(limit),
                };
                driver.settle(request);
                client.handle_input(
                    now,
                    Input::HttpResponse {
                        request,
                        status,
                        body,
                    },
                );
            }
            Op::HttpError { request } => {
                let request = driver.pick_request(*request);
                driver.settle(request);
                client.handle_input(now, Input::HttpError(request));
            }
            Op::WsOpen { ws } => {
                let ws = WsId(ws.pick(&driver.ws));
                if !driver.ws_gone.contains(&ws) {
                    driver.ws_opened.insert(ws);
                }
                client.handle_input(now, Input::WsOpen(ws));
            }
            Op::WsFrame { ws, frame } => {
                let ws = WsId(ws.pick(&driver.ws));
                let frame = match frame {
                    WsFrameSpec::Handshake(spec) => spec.frame(),
                    WsFrameSpec::Frame(spec) => spec.to_frame(limit),
                };
                client.handle_input(now, Input::WsFrame { ws, frame });
            }
            Op::WsClosed { ws } => {
                let ws = WsId(ws.pick(&driver.ws));
                driver.ws_gone.insert(ws);
                client.handle_input(now, Input::WsClosed(ws));
            }
            Op::Send(message) => {
                let was_closed = client.is_closed();
                match client.send(now, message.to_message()) {
                    Ok(()) => assert!(!client.is_closed()),
                    Err(SendError::Closed) => {}
                    Err(SendError::BufferFull) => {}
                    Err(other) => panic!("unexpected {other:?}"),
                }
                if was_closed {
                    assert!(client.is_closed());
                }
            }
            Op::Close => client.close(now),
            Op::Timeout => client.handle_input(now, Input::Timeout),
        }
        driver.check_step(&mut client);
    }
});
