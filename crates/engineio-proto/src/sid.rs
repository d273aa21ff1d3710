//! Session ids.
//!
//! A [`Sid`] is the opaque token the server hands out in the handshake and the
//! client repeats in every later request. It is stored inline (no allocation,
//! `Copy`) so drivers can use it as a map key for free. Randomness is injected:
//! the server draws ids from a [`SidGenerator`] the caller supplies, so tests and
//! fuzzers stay deterministic while real servers use a CSPRNG.

use core::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// The longest session id accepted, in bytes. Node's ids are 20 characters,
/// ours 22; the margin lets the client talk to servers with longer ids.
pub const MAX_SID_LEN: usize = 64;

/// An Engine.IO session id: up to [`MAX_SID_LEN`] printable ASCII characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sid {
    len: u8,
    bytes: [u8; MAX_SID_LEN],
}

/// Why a string cannot be a [`Sid`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SidError {
    /// Empty, or longer than [`MAX_SID_LEN`].
    #[error("session id length must be 1..={MAX_SID_LEN}")]
    BadLength,
    /// A character outside printable ASCII, or one that would need escaping in
    /// JSON or a query string.
    #[error("session id contains a character that is not allowed")]
    BadCharacter,
}

impl Sid {
    /// Builds the id a server hands out from 16 random bytes (128 bits): their
    /// URL-safe base64 form, 22 characters.
    pub fn from_random_bytes(random: [u8; 16]) -> Sid {
        let mut buf = [0u8; 24];
        let n = URL_SAFE_NO_PAD
            .encode_slice(random, &mut buf)
            .expect("22 characters fit in 24 bytes");
        let mut bytes = [0u8; MAX_SID_LEN];
        bytes[..n].copy_from_slice(&buf[..n]);
        Sid {
            len: n as u8,
            bytes,
        }
    }

    /// Parses an id received from a peer.
    ///
    /// Accepts printable ASCII except `"`, `\`, `&`, `#`, `%`, `+` and space, so
    /// an id can be written into JSON and a query string without escaping.
    pub fn parse(s: &str) -> Result<Sid, SidError> {
        let raw = s.as_bytes();
        if raw.is_empty() || raw.len() > MAX_SID_LEN {
            return Err(SidError::BadLength);
        }
        if !raw.iter().all(|&b| is_sid_byte(b)) {
            return Err(SidError::BadCharacter);
        }
        let mut bytes = [0u8; MAX_SID_LEN];
        bytes[..raw.len()].copy_from_slice(raw);
        Ok(Sid {
            len: raw.len() as u8,
            bytes,
        })
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored (checked in `parse`, base64 in
        // `from_random_bytes`), so this cannot fail.
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or_default()
    }
}

fn is_sid_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'&' | b'#' | b'%' | b'+')
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

impl AsRef<str> for Sid {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// A source of fresh session ids.
///
/// Runtime crates implement it over a CSPRNG (128 bits or more); tests use a
/// counter. The server never checks for collisions: with 128 random bits they
/// do not happen, and a deterministic generator is the caller's to keep unique.
pub trait SidGenerator {
    /// Returns an id no live session has.
    fn generate(&mut self) -> Sid;
}

impl<F: FnMut() -> Sid> SidGenerator for F {
    fn generate(&mut self) -> Sid {
        self()
    }
}

/// A deterministic generator for tests, simulators and fuzzers: ids are the
/// base64 of an incrementing counter. Never use it on a network.
#[derive(Debug, Clone, Default)]
pub struct CountingSidGenerator {
    next: u128,
}

impl SidGenerator for CountingSidGenerator {
    fn generate(&mut self) -> Sid {
        self.next += 1;
        Sid::from_random_bytes(self.next.to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_22_url_safe_characters() {
        let sid = Sid::from_random_bytes([0xff; 16]);
        assert_eq!(sid.as_str().len(), 22);
        assert_eq!(sid.as_str(), "_____________________w");
        assert_eq!(Sid::parse(sid.as_str()), Ok(sid));
    }

    #[test]
    fn parse_rejects_what_needs_escaping() {
        assert_eq!(Sid::parse(""), Err(SidError::BadLength));
        assert_eq!(Sid::parse(&"a".repeat(65)), Err(SidError::BadLength));
        assert!(Sid::parse(&"a".repeat(64)).is_ok());
        for bad in ["a b", "a\"b", "a\\b", "a&b", "é", "a\nb"] {
            assert_eq!(Sid::parse(bad), Err(SidError::BadCharacter), "{bad:?}");
        }
        // Node's ids use the base64 alphabet with `-` and `_`.
        assert!(Sid::parse("AbC-_09xyzAbC-_09xyz").is_ok());
    }

    #[test]
    fn counting_generator_is_deterministic() {
        let mut a = CountingSidGenerator::default();
        let mut b = CountingSidGenerator::default();
        assert_eq!(a.generate(), b.generate());
        assert_ne!(a.generate(), CountingSidGenerator::default().generate());
    }
}
