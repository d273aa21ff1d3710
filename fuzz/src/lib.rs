//! Shared input generators for the engineio-proto and socketio-proto fuzz
//! targets (the Socket.IO ones are in [`sio`]).
//!
//! Raw bytes rarely form valid Engine.IO, so the stateful targets mix raw
//! input with structured specs that encode to well-formed packets, letting
//! the fuzzer reach deep states (handshake, upgrade, heartbeat) quickly.

use bytes::{Bytes, BytesMut};
use engineio_proto::packet::{Frame, Message, Packet, Str};
use engineio_proto::payload::{self, SEPARATOR};
use libfuzzer_sys::arbitrary::{self, Arbitrary};

pub mod sim;
pub mod sio;

/// Most outputs one input may cause; the real bound is the input's size.
pub const MAX_OUTPUTS_PER_STEP: usize = 10_000;

/// Longest raw byte string taken from the fuzzer for one body or frame.
pub const MAX_RAW: usize = 8192;

/// A packet the fuzzer can build.
#[derive(Arbitrary, Debug, Clone)]
pub enum PacketSpec {
    Open(String),
    Close,
    Ping,
    PingProbe,
    Pong,
    PongProbe,
    PingData(String),
    PongData(String),
    Text(String),
    Binary(Vec<u8>),
    Upgrade,
    Noop,
}

impl PacketSpec {
    pub fn to_packet(&self) -> Packet {
        match self {
            PacketSpec::Open(s) => Packet::Open(str_of(s)),
            PacketSpec::Close => Packet::Close,
            PacketSpec::Ping => Packet::PING,
            PacketSpec::PingProbe => Packet::PING_PROBE,
            PacketSpec::Pong => Packet::PONG,
            PacketSpec::PongProbe => Packet::PONG_PROBE,
            PacketSpec::PingData(s) => Packet::Ping(str_of(s)),
            PacketSpec::PongData(s) => Packet::Pong(str_of(s)),
            PacketSpec::Text(s) => Packet::Message(Message::Text(str_of(s))),
            PacketSpec::Binary(b) => Packet::Message(Message::Binary(bytes_of(b))),
            PacketSpec::Upgrade => Packet::Upgrade,
            PacketSpec::Noop => Packet::Noop,
        }
    }
}

/// A message the application sends.
#[derive(Arbitrary, Debug, Clone)]
pub enum MessageSpec {
    Text(String),
    Binary(Vec<u8>),
    /// A message of exactly this many bytes.
    Sized(u16),
}

impl MessageSpec {
    pub fn to_message(&self) -> Message {
        match self {
            MessageSpec::Text(s) => Message::Text(str_of(s)),
            MessageSpec::Binary(b) => Message::Binary(bytes_of(b)),
            MessageSpec::Sized(n) => Message::Text(Str::from("x".repeat(usize::from(*n) % 5000))),
        }
    }
}

/// An HTTP body (a POST to the server, or a response to the client).
#[derive(Arbitrary, Debug, Clone)]
pub enum BodySpec {
    /// Whatever bytes.
    Raw(Vec<u8>),
    /// A well-formed payload.
    Packets(Vec<PacketSpec>),
    /// A text message payload of `limit + delta` bytes, to probe `maxPayload`
    /// exactly at its edge.
    AroundLimit(i8),
}

impl BodySpec {
    pub fn to_body(&self, limit: usize) -> Bytes {
        match self {
            BodySpec::Raw(b) => bytes_of(b),
            BodySpec::Packets(ps) => {
                let packets: Vec<Packet> = ps.iter().take(64).map(PacketSpec::to_packet).collect();
                payload::encode(&packets)
            }
            BodySpec::AroundLimit(delta) => {
                let len = limit
                    .saturating_add_signed(isize::from(*delta))
                    .clamp(1, 1 << 16);
                let mut body = vec![b'a'; len];
                body[0] = b'4';
                Bytes::from(body)
            }
        }
    }
}

/// A WebSocket frame.
#[derive(Arbitrary, Debug, Clone)]
pub enum FrameSpec {
    Packet(PacketSpec),
    Text(String),
    Binary(Vec<u8>),
    /// A text message frame of `limit + delta` bytes.
    AroundLimit(i8),
}

impl FrameSpec {
    pub fn to_frame(&self, limit: usize) -> Frame {
        match self {
            FrameSpec::Packet(p) => p.to_packet().encode_frame(),
            FrameSpec::Text(s) => Frame::Text(str_of(s)),
            FrameSpec::Binary(b) => Frame::Binary(bytes_of(b)),
            FrameSpec::AroundLimit(delta) => {
                let len = limit
                    .saturating_add_signed(isize::from(*delta))
                    .clamp(1, 1 << 16);
                let mut text = "a".repeat(len);
                text.replace_range(0..1, "4");
                Frame::Text(Str::from(text))
            }
        }
    }
}

/// Which of several known ids an input refers to.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Pick {
    /// The most recent one.
    Latest,
    /// One of them, by index.
    Index(u8),
    /// Any number at all (usually unknown to the machine).
    Raw(u64),
}

impl Pick {
    pub fn pick(self, known: &[u64]) -> u64 {
        match self {
            Pick::Latest => known.last().copied().unwrap_or(0),
            Pick::Index(i) if !known.is_empty() => known[usize::from(i) % known.len()],
            Pick::Index(i) => u64::from(i),
            Pick::Raw(n) => n,
        }
    }
}

/// The JSON of an OPEN packet (a server's handshake), usually valid.
#[derive(Arbitrary, Debug, Clone)]
pub struct HandshakeSpec {
    pub sid: u8,
    pub websocket: bool,
    pub ping_interval: u16,
    pub ping_timeout: u16,
    pub max_payload: Option<u16>,
    /// Replace the JSON with these bytes.
    pub garbage: Option<String>,
}

impl HandshakeSpec {
    pub fn json(&self) -> String {
        if let Some(garbage) = &self.garbage {
            return garbage.clone();
        }
        let sid = match self.sid % 4 {
            0 => "abc",
            1 => "lv_VI97HAXpY6yYWAAAC",
            2 => "a b", // not a valid sid
            _ => "AAAAAAAAAAAAAAAAAAAAAA",
        };
        let upgrades = if self.websocket {
            r#"["websocket"]"#
        } else {
            "[]"
        };
        let mut json = format!(
            r#"{{"sid":"{sid}","upgrades":{upgrades},"pingInterval":{},"pingTimeout":{}"#,
            self.ping_interval % 2000,
            self.ping_timeout % 2000
        );
        if let Some(max) = self.max_payload {
            json.push_str(&format!(r#","maxPayload":{max}"#));
        }
        json.push('}');
        json
    }

    /// `0{…}` as a WebSocket frame.
    pub fn frame(&self) -> Frame {
        Frame::Text(Str::from(format!("0{}", self.json())))
    }

    /// `0{…}` then `rest`, as the body of a handshake GET.
    pub fn payload<'a>(&self, rest: impl IntoIterator<Item = &'a Packet>) -> Bytes {
        let mut out = BytesMut::new();
        out.extend_from_slice(b"0");
        out.extend_from_slice(self.json().as_bytes());
        for packet in rest {
            out.extend_from_slice(&[SEPARATOR]);
            packet.write_in_payload(&mut out);
        }
        out.freeze()
    }
}

/// The status of an HTTP response to the client.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Status {
    Ok,
    Other(u16),
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::Other(s) => s,
        }
    }
}

/// Which of the client's requests an HTTP result answers.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ReqPick {
    /// The GET in flight (else the latest request).
    Get,
    /// The POST in flight (else the latest request).
    Post,
    Any(Pick),
}

fn str_of(s: &str) -> Str {
    Str::from(truncate(s))
}

fn truncate(s: &str) -> &str {
    if s.len() <= MAX_RAW {
        return s;
    }
    let mut end = MAX_RAW;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn bytes_of(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(&b[..b.len().min(MAX_RAW)])
}

/// Whether `EIO_FUZZ_TRACE` is set: the stateful targets then print every
/// input and output, to read what a seed or a crash does
/// (`EIO_FUZZ_TRACE=1 cargo +nightly fuzz run <target> <file>`).
pub fn tracing() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("EIO_FUZZ_TRACE").is_some())
}
