//! gzip and deflate `Content-Encoding` of long-polling bodies, both ways:
//! the server compresses a response per the request's `Accept-Encoding`
//! (Node's `httpCompression`), the client asks for it and decodes it.
//!
//! As in Node, only responses are compressed: Node's server never decodes
//! a compressed POST body (it would read it as a malformed payload), so
//! neither end sends one. Brotli is not offered because Node does not
//! offer it: a browser that accepts `br` gets gzip from either server.

use std::io::{self, Read, Write};

use bytes::Bytes;
use engineio_proto::server::HttpResponse;
use flate2::Compression;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING};

/// Settings of HTTP compression for long-polling responses (Node's
/// `httpCompression`, on by default with a 1 KiB threshold). Set
/// [`EngineConfig::http_compression`](crate::engine::EngineConfig::http_compression)
/// to `None` to turn it off.
///
/// ```
/// use socketio::{HttpCompression, SocketIoConfig};
///
/// let mut config = SocketIoConfig::default();
/// // Compress every response of 4 KiB and more, as fast as possible.
/// config.engine.http_compression = Some(HttpCompression::default().threshold(4096).level(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpCompression {
    /// Responses shorter than this many bytes go uncompressed: 1024, as in
    /// Node.
    pub threshold: usize,
    /// The zlib level, 0 (store) to 9 (smallest): 6, zlib's default, as in
    /// Node.
    pub level: u32,
}

impl Default for HttpCompression {
    fn default() -> Self {
        HttpCompression {
            threshold: 1024,
            level: 6,
        }
    }
}

impl HttpCompression {
    /// Sets [`HttpCompression::threshold`].
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// Sets [`HttpCompression::level`] (capped at 9).
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }
}

/// A `Content-Encoding` both ends know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Gzip,
    /// zlib-wrapped deflate, which is what HTTP's `deflate` means (and
    /// what Node's `zlib.createDeflate` writes).
    Deflate,
}

impl Encoding {
    /// In Node's order of preference when the client has none.
    const ALL: [Encoding; 2] = [Encoding::Gzip, Encoding::Deflate];

    fn name(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
        }
    }

    fn of(value: &HeaderValue) -> Option<Encoding> {
        let value = value.to_str().ok()?.trim();
        Encoding::ALL
            .into_iter()
            .find(|encoding| value.eq_ignore_ascii_case(encoding.name()))
    }
}

/// The encoding a request accepts, chosen as Node's `accepts` package
/// does among gzip and deflate: the highest `q`, an exact name before `*`,
/// then the one named first; `q=0` refuses. None without the header.
pub(crate) fn negotiate(headers: &HeaderMap) -> Option<Encoding> {
    // (q, exact, position in the header) of the spec that applies.
    let mut best: [Option<(f32, bool, usize)>; 2] = [None, None];
    let specs = headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .enumerate();
    for (position, spec) in specs {
        let mut parts = spec.split(';');
        let name = parts.next().unwrap_or("").trim();
        if name.is_empty() {
            continue;
        }
        let mut q = 1.0;
        for param in parts {
            if let Some((key, value)) = param.split_once('=') {
                if key.trim() == "q" {
                    // An unreadable weight accepts nothing, as in Node.
                    q = value.trim().parse().unwrap_or(0.0);
                }
            }
        }
        for (slot, encoding) in best.iter_mut().zip(Encoding::ALL) {
            let exact = name.eq_ignore_ascii_case(encoding.name());
            if !exact && name != "*" {
                continue;
            }
            // A more specific spec wins, then a higher weight.
            let better = match *slot {
                None => true,
                Some((best_q, best_exact, _)) => {
                    (exact, q) > (best_exact, best_q) || (exact == best_exact && q == best_q)
                }
            };
            if better {
                *slot = Some((q, exact, position));
            }
        }
    }
    let mut chosen: Option<(Encoding, (f32, bool, usize))> = None;
    for (encoding, spec) in Encoding::ALL.into_iter().zip(best) {
        let Some(spec) = spec.filter(|(q, _, _)| *q > 0.0) else {
            continue;
        };
        let wins = match chosen {
            None => true,
            // Higher weight, then exact, then named earlier; ties keep
            // Node's order (gzip first).
            Some((_, (q, exact, position))) => {
                spec.0 > q
                    || (spec.0 == q && (spec.1 && !exact || spec.1 == exact && spec.2 < position))
            }
        };
        if wins {
            chosen = Some((encoding, spec));
        }
    }
    chosen.map(|(encoding, _)| encoding)
}

/// Compresses a polling response for a client that accepts `encoding`
/// when it may be ([`HttpResponse::compress`]) and is at least the
/// threshold long. Returns the `Content-Encoding` to send with it, if it
/// was compressed; a body that fails to compress goes as it was.
pub(crate) fn compress_response(
    config: &HttpCompression,
    encoding: Encoding,
    response: &mut HttpResponse,
) -> Option<HeaderValue> {
    if !response.compress || response.body.len() < config.threshold {
        return None;
    }
    let compressed = encode(encoding, config.level, &response.body).ok()?;
    response.body = compressed;
    Some(HeaderValue::from_static(encoding.name()))
}

/// `data` compressed with `encoding` at zlib `level`.
pub(crate) fn encode(encoding: Encoding, level: u32, data: &[u8]) -> io::Result<Bytes> {
    let level = Compression::new(level.min(9));
    // Compressed text is rarely over a third of its size.
    let out = Vec::with_capacity(data.len() / 3 + 64);
    let out = match encoding {
        Encoding::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(out, level);
            encoder.write_all(data)?;
            encoder.finish()?
        }
        Encoding::Deflate => {
            let mut encoder = flate2::write::ZlibEncoder::new(out, level);
            encoder.write_all(data)?;
            encoder.finish()?
        }
    };
    Ok(Bytes::from(out))
}

/// What a client sends as `Accept-Encoding`.
pub(crate) const ACCEPTED: &str = "gzip, deflate";

/// Decodes a response body per its `Content-Encoding` (none, gzip or
/// deflate), refusing one that would inflate past `limit` bytes: a
/// compressed body is no way around the client's size bound.
pub(crate) fn decode(headers: &HeaderMap, body: Bytes, limit: usize) -> io::Result<Bytes> {
    let Some(value) = headers.get(CONTENT_ENCODING) else {
        return Ok(body);
    };
    if value.as_bytes().eq_ignore_ascii_case(b"identity") {
        return Ok(body);
    }
    let encoding = Encoding::of(value).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unsupported Content-Encoding {value:?}"),
        )
    })?;
    let bound = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::new();
    let read = match encoding {
        Encoding::Gzip => flate2::read::GzDecoder::new(&body[..])
            .take(bound)
            .read_to_end(&mut out),
        Encoding::Deflate => flate2::read::ZlibDecoder::new(&body[..])
            .take(bound)
            .read_to_end(&mut out),
    };
    read?;
    if out.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a compressed response inflates past {limit} bytes"),
        ));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests;
