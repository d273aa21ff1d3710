//! The permessage-deflate extension (RFC 7692): its negotiation in the
//! `Sec-WebSocket-Extensions` headers, and the per-connection compressor
//! and decompressor, both bounded.
//!
//! Bounds: the LZ77 window of each direction is at most
//! [`PerMessageDeflate::max_window_bits`] where the peer lets us ask for it,
//! a decompressed message never grows past the connection's message limit
//! (a zip bomb ends the connection with 1009, like an oversized message),
//! and without context takeover neither state outlives its message, so an
//! idle connection holds none.

use std::fmt::Write as _;

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// permessage-deflate (RFC 7692) on WebSockets: Node's `perMessageDeflate`.
/// Off unless set (`EngineConfig::per_message_deflate`,
/// `ClientOptions::per_message_deflate`), as in Node; see
/// `docs/compression.md` for what it costs and saves.
///
/// ```
/// use socketio::PerMessageDeflate;
///
/// // Node's `perMessageDeflate: true`: a 1 KiB threshold, context kept.
/// let deflate = PerMessageDeflate::default();
/// // Many idle connections: no state between messages, 4 KiB windows.
/// let lean = PerMessageDeflate::default()
///     .context_takeover(false)
///     .max_window_bits(12);
/// assert_eq!(lean.threshold, deflate.threshold);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PerMessageDeflate {
    /// Messages shorter than this many bytes go uncompressed (Node: 1024).
    pub threshold: usize,
    /// The zlib level, 0 (store) to 9 (smallest); 6 by default, zlib's and
    /// Node's.
    pub level: u32,
    /// The largest LZ77 window, 9 to 15 bits (the default, 32 KiB): a
    /// compressor holds about `2^(bits+2)` bytes plus 128 KiB, a
    /// decompressor `2^bits` plus about 10 KiB. Our side always keeps to
    /// it; the peer's side is asked to where its offer or answer allows
    /// (`client_max_window_bits`, `server_max_window_bits`).
    pub max_window_bits: u8,
    /// Keep each direction's compression context from one message to the
    /// next (Node's default): repeated content compresses far better, and
    /// each connection keeps a compressor and a decompressor once it used
    /// them. Without it both sides start each message afresh and the state
    /// is dropped after each message, so idle connections cost nothing.
    pub context_takeover: bool,
}

impl Default for PerMessageDeflate {
    fn default() -> Self {
        PerMessageDeflate {
            threshold: 1024,
            level: 6,
            max_window_bits: MAX_WINDOW_BITS,
            context_takeover: true,
        }
    }
}

impl PerMessageDeflate {
    /// Sets [`PerMessageDeflate::threshold`].
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// Sets [`PerMessageDeflate::level`] (capped at 9).
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Sets [`PerMessageDeflate::max_window_bits`] (kept within 9..=15).
    pub fn max_window_bits(mut self, bits: u8) -> Self {
        self.max_window_bits = bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        self
    }

    /// Sets [`PerMessageDeflate::context_takeover`].
    pub fn context_takeover(mut self, keep: bool) -> Self {
        self.context_takeover = keep;
        self
    }

    fn window(&self) -> u8 {
        self.max_window_bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS)
    }
}

const EXTENSION: &str = "permessage-deflate";
const MAX_WINDOW_BITS: u8 = 15;
/// zlib cannot make a raw deflate stream with an 8-bit window (it uses 9),
/// so 8 is never agreed to for our compressor.
const MIN_WINDOW_BITS: u8 = 9;
/// What RFC 7692 appends to a message's compressed data and strips.
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// What both sides agreed to, from our side's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agreed {
    /// Messages shorter than this go uncompressed.
    pub(crate) threshold: usize,
    pub(crate) level: u32,
    /// Our compressor's window.
    pub(crate) our_window: u8,
    /// Our compressor starts each message afresh.
    pub(crate) our_reset: bool,
    /// The window our decompressor needs.
    pub(crate) their_window: u8,
    /// The peer starts each message afresh.
    pub(crate) their_reset: bool,
}

/// One `name; key=value; key` element of a `Sec-WebSocket-Extensions`
/// header.
struct Element<'a> {
    name: &'a str,
    params: Vec<(&'a str, Option<&'a str>)>,
}

/// Splits `Sec-WebSocket-Extensions` values into their elements; `None`
/// when one is malformed. Quoted values are read without their quotes.
fn elements<'a>(values: impl Iterator<Item = &'a str>) -> Option<Vec<Element<'a>>> {
    let mut out = Vec::new();
    for value in values {
        for element in split_outside_quotes(value, ',') {
            // HTTP lists may have empty elements.
            if element.trim().is_empty() {
                continue;
            }
            let mut parts = split_outside_quotes(element, ';').into_iter();
            let name = parts.next().map(str::trim).filter(|n| is_token(n))?;
            let mut params = Vec::new();
            for part in parts {
                let (key, value) = match part.split_once('=') {
                    Some((key, value)) => {
                        let value = value.trim();
                        let value = match value.strip_prefix('"') {
                            Some(quoted) => quoted.strip_suffix('"')?,
                            None if is_token(value) => value,
                            None => return None,
                        };
                        (key.trim(), Some(value))
                    }
                    None => (part.trim(), None),
                };
                if !is_token(key) {
                    return None;
                }
                params.push((key, value));
            }
            out.push(Element { name, params });
        }
    }
    Some(out)
}

fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (at, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A window size parameter's value, 8 to 15.
fn window_bits(value: Option<&str>) -> Option<u8> {
    let value = value.filter(|v| v.bytes().all(|b| b.is_ascii_digit()))?;
    let bits: u8 = value.parse().ok()?;
    (8..=MAX_WINDOW_BITS).contains(&bits).then_some(bits)
}

/// The parameters of one permessage-deflate element, checked: each at most
/// once, values where RFC 7692 wants them.
#[derive(Default)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (a client saying it can).
    client_max_window_bits: Option<Option<u8>>,
}

impl Params {
    fn read(element: &Element<'_>) -> Option<Params> {
        let mut params = Params::default();
        let mut seen = [false; 4];
        for &(key, value) in &element.params {
            let slot = match key {
                "server_no_context_takeover" if value.is_none() => {
                    params.server_no_context_takeover = true;
                    0
                }
                "client_no_context_takeover" if value.is_none() => {
                    params.client_no_context_takeover = true;
                    1
                }
                "server_max_window_bits" => {
                    params.server_max_window_bits = Some(window_bits(value)?);
                    2
                }
                "client_max_window_bits" => {
                    params.client_max_window_bits = Some(match value {
                        None => None,
                        Some(_) => Some(window_bits(value)?),
                    });
                    3
                }
                _ => return None,
            };
            if std::mem::replace(&mut seen[slot], true) {
                return None;
            }
        }
        Some(params)
    }
}

/// Why an offer could not be read: Node answers such a handshake `400`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadOffer;

/// The server's side: accepts the first permessage-deflate offer it can
/// keep to, in the client's order, and returns what was agreed and the
/// `Sec-WebSocket-Extensions` value to answer with. Other extensions are
/// ignored; an offer that cannot be read refuses the handshake, as Node's
/// `ws` does.
pub(crate) fn accept_offer<'a>(
    config: &PerMessageDeflate,
    values: impl Iterator<Item = &'a str>,
) -> Result<Option<(Agreed, String)>, BadOffer> {
    let elements = elements(values).ok_or(BadOffer)?;
    let mut offers = Vec::new();
    for element in elements.iter().filter(|e| e.name == EXTENSION) {
        offers.push(Params::read(element).ok_or(BadOffer)?);
    }
    let ours = config.window();
    for offer in offers {
        // The client caps our window; below 9 bits zlib cannot keep to it.
        let our_window = offer.server_max_window_bits.map_or(ours, |w| w.min(ours));
        if our_window < MIN_WINDOW_BITS {
            continue;
        }
        let our_reset = offer.server_no_context_takeover || !config.context_takeover;
        let their_reset = offer.client_no_context_takeover || !config.context_takeover;
        // The client's window can be capped only when it says it can take
        // a cap (the parameter in its offer).
        let their_window = match offer.client_max_window_bits {
            Some(offered) => offered.unwrap_or(MAX_WINDOW_BITS).min(ours),
            None => MAX_WINDOW_BITS,
        };
        let mut answer = String::from(EXTENSION);
        if our_reset {
            answer.push_str("; server_no_context_takeover");
        }
        if their_reset {
            answer.push_str("; client_no_context_takeover");
        }
        if offer.server_max_window_bits.is_some() {
            let _ = write!(answer, "; server_max_window_bits={our_window}");
        }
        if offer.client_max_window_bits.is_some() && their_window < MAX_WINDOW_BITS {
            let _ = write!(answer, "; client_max_window_bits={their_window}");
        }
        let agreed = Agreed {
            threshold: config.threshold,
            level: config.level,
            our_window,
            our_reset,
            // zlib inflates an 8-bit window's stream with a 9-bit one.
            their_window: their_window.max(MIN_WINDOW_BITS),
            their_reset,
        };
        return Ok(Some((agreed, answer)));
    }
    Ok(None)
}

/// The client's side: the `Sec-WebSocket-Extensions` value that offers
/// permessage-deflate with these settings.
pub(crate) fn offer(config: &PerMessageDeflate) -> String {
    let window = config.window();
    let mut offer = String::from(EXTENSION);
    if !config.context_takeover {
        offer.push_str("; server_no_context_takeover; client_no_context_takeover");
    }
    if window < MAX_WINDOW_BITS {
        let _ = write!(offer, "; server_max_window_bits={window}");
        let _ = write!(offer, "; client_max_window_bits={window}");
    } else {
        offer.push_str("; client_max_window_bits");
    }
    offer
}

/// Why a server's answer cannot be kept to: the client fails the
/// connection (RFC 7692 section 5).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("the server's Sec-WebSocket-Extensions answer cannot be kept to: {0}")]
pub(crate) struct BadAnswer(pub(crate) &'static str);

/// The client's side: reads the server's answer to [`offer`]. `Ok(None)`
/// when the server declined.
pub(crate) fn accept_answer<'a>(
    config: &PerMessageDeflate,
    values: impl Iterator<Item = &'a str>,
) -> Result<Option<Agreed>, BadAnswer> {
    let elements = elements(values).ok_or(BadAnswer("malformed"))?;
    let mut elements = elements.iter();
    let Some(element) = elements.next() else {
        return Ok(None);
    };
    if element.name != EXTENSION || elements.next().is_some() {
        return Err(BadAnswer("an extension that was not offered"));
    }
    let answer = Params::read(element).ok_or(BadAnswer("invalid parameters"))?;
    let window = config.window();
    let both_dropped = answer.server_no_context_takeover && answer.client_no_context_takeover;
    if !config.context_takeover && !both_dropped {
        return Err(BadAnswer("context takeover was declined"));
    }
    let their_window = answer.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS);
    if window < MAX_WINDOW_BITS && their_window > window {
        return Err(BadAnswer("server_max_window_bits over the offer"));
    }
    let our_window = match answer.client_max_window_bits {
        Some(None) => return Err(BadAnswer("client_max_window_bits without a value")),
        Some(Some(bits)) => bits.min(window),
        None => window,
    };
    if our_window < MIN_WINDOW_BITS {
        return Err(BadAnswer(
            "an 8-bit window, which zlib cannot compress with",
        ));
    }
    Ok(Some(Agreed {
        threshold: config.threshold,
        level: config.level,
        our_window,
        our_reset: answer.client_no_context_takeover,
        their_window: their_window.max(MIN_WINDOW_BITS),
        their_reset: answer.server_no_context_takeover,
    }))
}

/// How many idle compressors (and as many decompressors) a thread keeps
/// for connections without context takeover.
const POOLED: usize = 4;

thread_local! {
    /// Between two messages of connections without context takeover, their
    /// compressors (by level and window) and decompressors (by window) wait
    /// here, reset, for the next message of any connection on this thread:
    /// an idle connection keeps none, and a message does not allocate and
    /// free zlib's state (~300 KiB for a compressor). That churn, under
    /// glibc's malloc (whose mmap threshold grows after the first free),
    /// left the freed memory resident: 885 KiB per idle connection in the
    /// bench's `idle-deflate-lean` before this pool.
    static COMPRESSORS: RefCell<Vec<(u32, u8, Compress)>> = const { RefCell::new(Vec::new()) };
    static DECOMPRESSORS: RefCell<Vec<(u8, Decompress)>> = const { RefCell::new(Vec::new()) };
}

/// A compressor for a message without context takeover: a pooled one, or
/// a new one.
fn take_compressor(level: u32, window: u8) -> Compress {
    let pooled = COMPRESSORS
        .try_with(|pool| {
            let mut pool = pool.borrow_mut();
            let at = pool
                .iter()
                .position(|(l, w, _)| (*l, *w) == (level, window))?;
            Some(pool.swap_remove(at).2)
        })
        .ok()
        .flatten();
    pooled.unwrap_or_else(|| Compress::new_with_window_bits(Compression::new(level), false, window))
}

/// Gives a compressor back after a message, reset, if the pool has room.
fn give_compressor(level: u32, window: u8, mut compressor: Compress) {
    compressor.reset();
    let _ = COMPRESSORS.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOLED {
            pool.push((level, window, compressor));
        }
    });
}

/// A decompressor for a message without context takeover.
fn take_decompressor(window: u8) -> Decompress {
    let pooled = DECOMPRESSORS
        .try_with(|pool| {
            let mut pool = pool.borrow_mut();
            let at = pool.iter().position(|(w, _)| *w == window)?;
            Some(pool.swap_remove(at).1)
        })
        .ok()
        .flatten();
    pooled.unwrap_or_else(|| Decompress::new_with_window_bits(false, window))
}

/// Gives a decompressor back after a message, reset, if the pool has room.
fn give_decompressor(window: u8, mut decompressor: Decompress) {
    decompressor.reset(false);
    let _ = DECOMPRESSORS.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOLED {
            pool.push((window, decompressor));
        }
    });
}

/// Compresses the messages one side sends.
pub(crate) struct Deflater {
    agreed: Agreed,
    /// Made at the first compressed message; dropped after each message
    /// without context takeover.
    state: Option<Compress>,
}

impl Deflater {
    pub(crate) fn new(agreed: Agreed) -> Deflater {
        Deflater {
            agreed,
            state: None,
        }
    }

    /// Whether a message of this size is compressed.
    pub(crate) fn wants(&self, len: usize) -> bool {
        len > 0 && len >= self.agreed.threshold
    }

    /// Appends `input` compressed, without RFC 7692's tail, to `out`.
    pub(crate) fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        let agreed = self.agreed;
        let written = self.write(input, out);
        match (written, self.state.take()) {
            // A failed stream cannot go on.
            (Err(error), _) => Err(error),
            (Ok(()), Some(state)) if agreed.our_reset => {
                give_compressor(agreed.level, agreed.our_window, state);
                Ok(())
            }
            (Ok(()), state) => {
                self.state = state;
                Ok(())
            }
        }
    }

    fn write(&mut self, input: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        let agreed = &self.agreed;
        let state = self.state.get_or_insert_with(|| {
            if agreed.our_reset {
                take_compressor(agreed.level, agreed.our_window)
            } else {
                Compress::new_with_window_bits(
                    Compression::new(agreed.level),
                    false,
                    agreed.our_window,
                )
            }
        });
        let start = out.len();
        out.reserve(input.len() / 2 + 64);
        let base = state.total_in();
        loop {
            let consumed = (state.total_in() - base) as usize;
            let before = out.len();
            state
                .compress_vec(&input[consumed..], out, FlushCompress::Sync)
                .map_err(std::io::Error::other)?;
            let done = (state.total_in() - base) as usize == input.len();
            // A sync flush is complete once it left room in the output.
            if done && out.len() < out.capacity() {
                break;
            }
            if out.len() == before && !done && out.len() < out.capacity() {
                return Err(std::io::Error::other("deflate made no progress"));
            }
            out.reserve(out.capacity().max(256));
        }
        if !out[start..].ends_with(&TAIL) {
            return Err(std::io::Error::other("deflate sync flush without its tail"));
        }
        out.truncate(out.len() - TAIL.len());
        Ok(())
    }
}

/// Why a compressed message could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// It inflates past the message limit.
    TooLarge,
    /// It is not a deflate stream.
    Invalid,
}

/// Decompresses the messages the peer sends.
pub(crate) struct Inflater {
    agreed: Agreed,
    state: Option<Decompress>,
}

impl Inflater {
    pub(crate) fn new(agreed: Agreed) -> Inflater {
        Inflater {
            agreed,
            state: None,
        }
    }

    /// Inflates one message's data, stopping as soon as the result would
    /// pass `max` bytes.
    pub(crate) fn inflate(&mut self, input: &[u8], max: usize) -> Result<Vec<u8>, InflateError> {
        let (window, reset) = (self.agreed.their_window, self.agreed.their_reset);
        let state = self.state.get_or_insert_with(|| match reset {
            true => take_decompressor(window),
            false => Decompress::new_with_window_bits(false, window),
        });
        let limit = max.saturating_add(1);
        let mut out = Vec::with_capacity(input.len().saturating_mul(3).max(64).min(limit));
        let result = match feed(state, input, &mut out, limit) {
            Ok(false) => feed(state, &TAIL, &mut out, limit),
            ended => ended,
        };
        match (&result, self.state.take()) {
            // A failed stream cannot go on.
            (Err(_), _) => {}
            // Without context takeover the next message starts afresh
            // anyway; an ended stream (a final block, which RFC 7692
            // allows) starts afresh too, so its state is reset.
            (Ok(ended), Some(state)) if reset || *ended => match reset {
                true => give_decompressor(window, state),
                false => self.state = Some(reset_decompressor(state)),
            },
            (Ok(_), state) => self.state = state,
        }
        result.map(|_| out)
    }
}

fn reset_decompressor(mut decompressor: Decompress) -> Decompress {
    decompressor.reset(false);
    decompressor
}

/// Inflates all of `input` into `out`, which may hold at most `limit - 1`
/// bytes; `true` when the data ended with a final block (what follows it
/// is ignored).
fn feed(
    state: &mut Decompress,
    input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<bool, InflateError> {
    let base = state.total_in();
    loop {
        let consumed = (state.total_in() - base) as usize;
        let before = (state.total_in(), out.len());
        let status = state
            .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)
            .map_err(|_| InflateError::Invalid)?;
        if out.len() >= limit {
            return Err(InflateError::TooLarge);
        }
        if matches!(status, Status::StreamEnd) {
            return Ok(true);
        }
        let done = (state.total_in() - base) as usize == input.len();
        if done && out.len() < out.capacity() {
            return Ok(false);
        }
        if out.len() == out.capacity() {
            // Grow by doubling, never past the limit.
            let wanted = out.capacity().saturating_mul(2).max(64).min(limit);
            out.reserve_exact(wanted - out.len());
        } else if (state.total_in(), out.len()) == before {
            return Err(InflateError::Invalid);
        }
    }
}

#[cfg(test)]
mod tests;
