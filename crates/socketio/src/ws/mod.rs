//! WebSockets on any runtime: RFC 6455 framing ([`frame`]) and
//! permessage-deflate ([`deflate`]) over a `futures-io` connection, read and
//! written by whichever task holds the [`WebSocket`] (see `ws_link.rs`).
//! The handshakes are HTTP and live with the server's upgrade
//! (`engine/websocket.rs`) and the client's connect (`client/transport.rs`).

pub(crate) mod deflate;
pub(crate) mod frame;
#[cfg(fuzzing)]
pub mod fuzzing;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use engineio_proto::Frame;
use futures_io::{AsyncRead, AsyncWrite};

pub use deflate::PerMessageDeflate;
use deflate::{Agreed, Deflater, Inflater};
use frame::{Broken, Decoded, Decoder, Event, Role};

/// The connection under every WebSocket of ours, server's and client's:
/// an HTTP connection hyper upgraded.
pub(crate) type UpgradedIo = crate::io::HyperIo<hyper::upgrade::Upgraded>;

/// The `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 section
/// 4.2.2): what the server answers, what the client checks.
pub(crate) fn accept_key(key: &[u8]) -> String {
    use base64::Engine as _;
    use sha1::{Digest, Sha1};
    const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let digest = Sha1::new().chain_update(key).chain_update(GUID).finalize();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// A buffer larger than this is given back once it is empty again, so a
/// connection that once carried a large message does not keep its memory.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Most bytes read at once while a large frame arrives.
const MAX_READ: usize = 64 * 1024;

/// What a WebSocket needs to know from its handshake and settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) role: Role,
    /// The largest message the peer may send, inflated.
    pub(crate) max_message: usize,
    /// Bytes read at a time while no frame asks for more.
    pub(crate) read_chunk: usize,
    /// permessage-deflate, when the handshake agreed to it.
    pub(crate) deflate: Option<Agreed>,
}

/// What reading found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// A message.
    Frame(Frame),
    /// The peer closed it (a close frame was answered), or the connection
    /// ended or failed.
    Ended,
    /// The peer broke the protocol: stop reading, close with its code.
    Broken(Broken),
}

/// One WebSocket connection.
pub(crate) struct WebSocket<IO> {
    io: IO,
    decoder: Decoder,
    read_buf: BytesMut,
    read_chunk: usize,
    /// The peer finished sending (or the connection failed).
    eof: bool,
    /// Frames encoded and not yet written to the connection.
    write_buf: BytesMut,
    deflater: Option<Deflater>,
    /// Where messages are compressed, kept between messages.
    compressed: Vec<u8>,
    /// A client's masking keys.
    masks: Option<Masks>,
    close_sent: bool,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> WebSocket<IO> {
    /// A WebSocket over a connection whose handshake is done.
    pub(crate) fn new(io: IO, settings: Settings) -> WebSocket<IO> {
        let inflater = settings.deflate.map(Inflater::new);
        WebSocket {
            io,
            decoder: Decoder::new(settings.role, settings.max_message, inflater),
            read_buf: BytesMut::new(),
            read_chunk: settings.read_chunk.max(64),
            eof: false,
            write_buf: BytesMut::new(),
            deflater: settings.deflate.map(Deflater::new),
            compressed: Vec::new(),
            masks: (settings.role == Role::Client).then(Masks::new),
            close_sent: false,
        }
    }

    /// Reads the next message. Pings are answered and close frames
    /// echoed on the way.
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Read> {
        loop {
            let need = match self.decoder.decode(&mut self.read_buf) {
                Ok(Decoded::Event(Event::Message(frame))) => {
                    return Poll::Ready(Read::Frame(frame))
                }
                Ok(Decoded::Event(Event::Ping(data))) => {
                    // A peer that pings without reading gets no more pongs
                    // once a buffer's worth waits (RFC 6455 lets an endpoint
                    // answer only the latest ping): its pings cost no memory.
                    if !self.close_sent && self.write_buf.len() < KEEP_CAPACITY {
                        self.encode(frame::PONG, false, &data);
                        // Written now if the connection takes it; the
                        // task's next write flushes the rest.
                        let _ = self.poll_flush(cx);
                    }
                    continue;
                }
                Ok(Decoded::Event(Event::Close(code))) => {
                    if !self.close_sent {
                        let payload = code.map(|code| frame::close_payload(code, ""));
                        self.encode(frame::CLOSE, false, payload.as_deref().unwrap_or_default());
                        self.close_sent = true;
                        let _ = self.poll_flush(cx);
                    }
                    return Poll::Ready(Read::Ended);
                }
                Ok(Decoded::Need(need)) => need,
                Err(broken) => return Poll::Ready(Read::Broken(broken)),
            };
            if self.eof {
                return Poll::Ready(Read::Ended);
            }
            std::task::ready!(self.poll_fill(cx, need));
        }
    }

    /// Reads more into the read buffer: at least a chunk, more (up to
    /// [`MAX_READ`]) while a large frame arrives.
    fn poll_fill(&mut self, cx: &mut Context<'_>, need: usize) -> Poll<()> {
        if self.read_buf.is_empty() && self.read_buf.capacity() > KEEP_CAPACITY {
            self.read_buf = BytesMut::new();
        }
        let start = self.read_buf.len();
        let size = need.clamp(self.read_chunk, MAX_READ.max(self.read_chunk));
        // futures-io reads into initialised memory.
        self.read_buf.resize(start + size, 0);
        let read = Pin::new(&mut self.io).poll_read(cx, &mut self.read_buf[start..]);
        let filled = match read {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(error)) => {
                tracing::debug!(%error, "websocket read failed");
                0
            }
            Poll::Pending => {
                self.read_buf.truncate(start);
                return Poll::Pending;
            }
        };
        self.read_buf.truncate(start + filled);
        if filled == 0 {
            self.eof = true;
        }
        Poll::Ready(())
    }

    /// Queues a message, compressed when permessage-deflate was agreed,
    /// `compress` allows it and it reaches the threshold.
    pub(crate) fn send(&mut self, message: &Frame, compress: bool) -> io::Result<()> {
        let (opcode, data): (u8, &[u8]) = match message {
            Frame::Text(text) => (frame::TEXT, text.as_bytes()),
            Frame::Binary(data) => (frame::BINARY, data),
        };
        match self.deflater.as_mut() {
            Some(deflater) if compress && deflater.wants(data.len()) => {
                let mut compressed = std::mem::take(&mut self.compressed);
                compressed.clear();
                let done = deflater.compress(data, &mut compressed);
                if done.is_ok() {
                    self.encode(opcode, true, &compressed);
                }
                if compressed.capacity() <= KEEP_CAPACITY {
                    self.compressed = compressed;
                }
                done
            }
            _ => {
                self.encode(opcode, false, data);
                Ok(())
            }
        }
    }

    /// Queues the close frame, once: with a code and reason when the peer
    /// broke the protocol, empty otherwise (as Node's `ws` closes).
    pub(crate) fn send_close(&mut self, code: Option<(u16, &str)>) {
        if std::mem::replace(&mut self.close_sent, true) {
            return;
        }
        match code {
            Some((code, reason)) => {
                let payload = frame::close_payload(code, reason);
                self.encode(frame::CLOSE, false, &payload);
            }
            None => self.encode(frame::CLOSE, false, &[]),
        }
    }

    fn encode(&mut self, opcode: u8, rsv1: bool, payload: &[u8]) {
        let mask = self.masks.as_mut().map(Masks::next);
        frame::encode(&mut self.write_buf, opcode, rsv1, payload, mask);
    }

    /// Bytes queued and not yet written.
    pub(crate) fn buffered(&self) -> usize {
        self.write_buf.len()
    }

    /// Writes what is queued and flushes the connection.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.write_buf.is_empty() {
            let written =
                std::task::ready!(Pin::new(&mut self.io).poll_write(cx, &self.write_buf))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.write_buf.advance(written);
        }
        if self.write_buf.capacity() > KEEP_CAPACITY {
            self.write_buf = BytesMut::new();
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Writes what is queued (the close frame last, if sent) and shuts the
    /// connection's writing side.
    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_flush(cx))?;
        Pin::new(&mut self.io).poll_close(cx)
    }
}

/// A client's masking keys (RFC 6455 section 5.3): a xorshift generator
/// seeded from the system's random source per connection, not a system
/// call per frame. The keys keep a browser's scripts from choosing the
/// bytes on the wire; a native client needs them only to be unpredictable
/// to the network.
struct Masks(u64);

impl Masks {
    fn new() -> Masks {
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).expect("the operating system's random source failed");
        Masks(u64::from_ne_bytes(seed) | 1)
    }

    fn next(&mut self) -> [u8; 4] {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        ((x >> 32) as u32).to_ne_bytes()
    }
}

#[cfg(test)]
mod tests;
