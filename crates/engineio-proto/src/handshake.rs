//! The handshake: the JSON of the OPEN packet.
//!
//! Node writes exactly `{"sid":…,"upgrades":[…],"pingInterval":…,"pingTimeout":…,"maxPayload":…}`
//! in that key order, and the official test suites compare the keys, so the
//! field order of [`Handshake`] is part of the wire format.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use serde::{Deserialize, Serialize};

use crate::packet::Str;
use crate::sid::Sid;
use crate::transport::TransportKind;

/// The session parameters a server announces in its OPEN packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshake {
    /// The session id to repeat in later requests.
    pub sid: Sid,
    /// Transports the client may upgrade to (`["websocket"]` on polling).
    /// Unknown names are kept so a client can skip them.
    pub upgrades: Vec<String>,
    /// Milliseconds between the server's pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong.
    pub ping_timeout: u64,
    /// The largest payload or message the server accepts, in bytes.
    #[serde(default = "default_max_payload")]
    pub max_payload: u64,
}

const fn default_max_payload() -> u64 {
    1_000_000
}

/// Why an OPEN packet's data is not a handshake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid handshake json")]
pub struct HandshakeError;

impl Handshake {
    /// The ping interval as a duration.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval)
    }

    /// The ping timeout as a duration.
    pub fn ping_timeout(&self) -> Duration {
        Duration::from_millis(self.ping_timeout)
    }

    /// Whether the server offers an upgrade to `kind`.
    pub fn offers_upgrade(&self, kind: TransportKind) -> bool {
        self.upgrades.iter().any(|u| u == kind.as_str())
    }

    /// The compact JSON Node writes.
    pub fn to_json(&self) -> Str {
        // Serializing plain strings and integers cannot fail.
        Str::from(serde_json::to_string(self).unwrap_or_default())
    }

    /// Parses the data of an OPEN packet.
    pub fn from_json(json: &str) -> Result<Handshake, HandshakeError> {
        serde_json::from_str(json).map_err(|_| HandshakeError)
    }
}

impl Serialize for Sid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Sid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Sid, D::Error> {
        let s = <alloc::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Sid::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn writes_nodes_exact_json() {
        let handshake = Handshake {
            sid: Sid::parse("lv_VI97HAXpY6yYWAAAC").unwrap(),
            upgrades: vec!["websocket".into()],
            ping_interval: 25000,
            ping_timeout: 20000,
            max_payload: 1000000,
        };
        let json = handshake.to_json();
        assert_eq!(
            json.as_str(),
            r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
        assert_eq!(Handshake::from_json(&json), Ok(handshake));
    }

    #[test]
    fn tolerates_unknown_upgrades_and_keys() {
        let h = Handshake::from_json(
            r#"{"sid":"abc","upgrades":["websocket","webtransport"],"pingInterval":1,"pingTimeout":2,"maxPayload":3,"extra":true}"#,
        )
        .unwrap();
        assert!(h.offers_upgrade(TransportKind::WebSocket));
        assert!(!h.offers_upgrade(TransportKind::Polling));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Handshake::from_json("{"), Err(HandshakeError));
        assert_eq!(
            Handshake::from_json(r#"{"sid":"a b","upgrades":[],"pingInterval":1,"pingTimeout":1}"#),
            Err(HandshakeError)
        );
        assert_eq!(
            Handshake::from_json(r#"{"sid":"ab","upgrades":[],"pingInterval":-1,"pingTimeout":1}"#),
            Err(HandshakeError)
        );
    }
}
