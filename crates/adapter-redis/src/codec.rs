//! Event arguments between our form (JSON text with binary placeholders plus
//! attachments) and the MessagePack values Node's adapter publishes, where
//! binary data is a msgpack `bin` in place.
//!
//! Node encodes with notepack.io: integers in their smallest form, every
//! other number a float64, a `Buffer` (or any typed array) a `bin`, a `Date`
//! a timestamp extension (type -1). A `Date` comes back as the ISO string
//! `JSON.stringify` would have made of it; any other extension is refused.

use bytes::Bytes;
use rmpv::Value as Msgpack;
use serde_json::Value as Json;
use socketio::parser::msgpack::js_iso_date;

/// Why a value could not cross between JSON and MessagePack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Not valid MessagePack, or nested too deep.
    #[error("invalid msgpack: {0}")]
    Msgpack(#[from] rmpv::decode::Error),
    /// Not valid JSON.
    #[error("invalid json: {0}")]
    Json(#[from] serde_json::Error),
    /// Valid, but not the shape the adapter protocol has here.
    #[error("unexpected message shape: {0}")]
    Shape(&'static str),
}

/// How deep a message may nest: far more than any real event, far less
/// than would exhaust the stack.
const MAX_DEPTH: usize = 128;

/// The `_placeholder` object that stands for attachment `num`.
fn placeholder(num: usize) -> Json {
    serde_json::json!({ "_placeholder": true, "num": num })
}

/// The attachment index of a placeholder object, if it is one.
fn placeholder_index(object: &serde_json::Map<String, Json>) -> Option<usize> {
    if object.len() != 2 || object.get("_placeholder") != Some(&Json::Bool(true)) {
        return None;
    }
    object
        .get("num")?
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
}

/// A JSON value as MessagePack, each placeholder replaced by its attachment
/// as `bin`.
pub fn to_msgpack(json: &Json, attachments: &[Bytes]) -> Result<Msgpack, CodecError> {
    Ok(match json {
        Json::Null => Msgpack::Nil,
        Json::Bool(b) => Msgpack::Boolean(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Msgpack::from(i)
            } else if let Some(u) = n.as_u64() {
                Msgpack::from(u)
            } else {
                Msgpack::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        Json::String(s) => Msgpack::from(s.as_str()),
        Json::Array(items) => Msgpack::Array(
            items
                .iter()
                .map(|item| to_msgpack(item, attachments))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(object) => {
            if let Some(num) = placeholder_index(object) {
                let bytes = attachments
                    .get(num)
                    .ok_or(CodecError::Shape("placeholder without attachment"))?;
                return Ok(Msgpack::Binary(bytes.to_vec()));
            }
            Msgpack::Map(
                object
                    .iter()
                    .map(|(key, value)| {
                        Ok((Msgpack::from(key.as_str()), to_msgpack(value, attachments)?))
                    })
                    .collect::<Result<_, CodecError>>()?,
            )
        }
    })
}

/// A MessagePack value as JSON; each `bin` becomes a placeholder and its
/// bytes are appended to `attachments`.
pub fn to_json(value: Msgpack, attachments: &mut Vec<Bytes>) -> Result<Json, CodecError> {
    Ok(match value {
        Msgpack::Nil => Json::Null,
        Msgpack::Boolean(b) => Json::Bool(b),
        Msgpack::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(i), _) => Json::from(i),
            (None, Some(u)) => Json::from(u),
            (None, None) => Json::Null,
        },
        Msgpack::F32(f) => float(f64::from(f)),
        Msgpack::F64(f) => float(f),
        Msgpack::String(s) => match s.into_str() {
            Some(s) => Json::String(s),
            None => return Err(CodecError::Shape("string is not UTF-8")),
        },
        Msgpack::Binary(bytes) => {
            attachments.push(Bytes::from(bytes));
            placeholder(attachments.len() - 1)
        }
        Msgpack::Array(items) => Json::Array(
            items
                .into_iter()
                .map(|item| to_json(item, attachments))
                .collect::<Result<_, _>>()?,
        ),
        Msgpack::Map(entries) => {
            let mut object = serde_json::Map::with_capacity(entries.len());
            for (key, value) in entries {
                let key = match key {
                    Msgpack::String(s) => s
                        .into_str()
                        .ok_or(CodecError::Shape("map key is not UTF-8"))?,
                    Msgpack::Integer(i) => i.to_string(),
                    _ => return Err(CodecError::Shape("map key is not a string")),
                };
                object.insert(key, to_json(value, attachments)?);
            }
            // Binary travels as `bin`; a literal placeholder would point at
            // attachments it does not own.
            if placeholder_index(&object).is_some() {
                return Err(CodecError::Shape("literal binary placeholder"));
            }
            Json::Object(object)
        }
        Msgpack::Ext(-1, data) => iso_date(&data)?,
        Msgpack::Ext(..) => return Err(CodecError::Shape("unsupported msgpack extension")),
    })
}

/// JSON has no NaN or infinities; `JSON.stringify` writes them as null.
fn float(f: f64) -> Json {
    serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
}

/// A msgpack timestamp (4, 8 or 12 bytes) as JavaScript's
/// `Date.prototype.toISOString` writes it.
fn iso_date(data: &[u8]) -> Result<Json, CodecError> {
    let (seconds, nanos): (i64, u32) = match data.len() {
        4 => (
            i64::from(u32::from_be_bytes(data.try_into().unwrap_or_default())),
            0,
        ),
        8 => {
            let raw = u64::from_be_bytes(data.try_into().unwrap_or_default());
            ((raw & 0x3_ffff_ffff) as i64, (raw >> 34) as u32)
        }
        12 => {
            let nanos = u32::from_be_bytes(data[..4].try_into().unwrap_or_default());
            let seconds = i64::from_be_bytes(data[4..].try_into().unwrap_or_default());
            (seconds, nanos)
        }
        _ => return Err(CodecError::Shape("bad timestamp length")),
    };
    // notepack makes `new Date(seconds * 1e3 + nanos / 1e6)`, whose time
    // value is truncated towards zero.
    let millis = (i128::from(seconds) * 1_000_000_000 + i128::from(nanos)) / 1_000_000;
    Ok(i64::try_from(millis)
        .ok()
        .and_then(js_iso_date)
        .map_or(Json::Null, Json::String))
}

/// Encodes a MessagePack value.
pub fn encode(value: &Msgpack) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, value);
    out
}

/// Decodes one MessagePack value; bounded in depth, and in allocation by
/// the message's own size.
pub fn decode(mut bytes: &[u8]) -> Result<Msgpack, CodecError> {
    Ok(rmpv::decode::read_value_with_max_depth(
        &mut bytes, MAX_DEPTH,
    )?)
}

/// Event arguments (a JSON array as text, plus attachments) as a msgpack
/// array.
pub fn args_to_msgpack(json: &str, attachments: &[Bytes]) -> Result<Msgpack, CodecError> {
    let value: Json = serde_json::from_str(json)?;
    to_msgpack(&value, attachments)
}

/// A JSON value in the form Node's `JSON.stringify` gives a `Buffer`
/// (`{"type":"Buffer","data":[…]}`): what binary data becomes in the
/// requests Node's adapter always writes as JSON.
pub fn buffers_as_json(json: &Json, attachments: &[Bytes]) -> Json {
    match json {
        Json::Array(items) => Json::Array(
            items
                .iter()
                .map(|item| buffers_as_json(item, attachments))
                .collect(),
        ),
        Json::Object(object) => match placeholder_index(object).and_then(|n| attachments.get(n)) {
            Some(bytes) => serde_json::json!({ "type": "Buffer", "data": bytes.as_ref() }),
            None => Json::Object(
                object
                    .iter()
                    .map(|(key, value)| (key.clone(), buffers_as_json(value, attachments)))
                    .collect(),
            ),
        },
        other => other.clone(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Bytes from their hex text (test vectors captured from Node).
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn binary_becomes_bin_and_back() {
        let json: Json =
            serde_json::from_str(r#"["bin",{"_placeholder":true,"num":0},1.5,-3]"#).unwrap();
        let value = to_msgpack(&json, &[Bytes::from_static(&[1, 2, 3])]).unwrap();
        let bytes = encode(&value);
        // bin8 of three bytes, a float64, a negative fixint.
        assert_eq!(bytes, hex("94a362696ec403010203cb3ff8000000000000fd"));
        let mut attachments = Vec::new();
        let back = to_json(decode(&bytes).unwrap(), &mut attachments).unwrap();
        assert_eq!(back, json);
        assert_eq!(attachments, vec![Bytes::from_static(&[1, 2, 3])]);
    }

    #[test]
    fn dates_become_iso_strings_and_other_extensions_are_refused() {
        // new Date(0) as notepack writes it (timestamp 32).
        let date = decode(&hex("d6ff00000000")).unwrap();
        let json = to_json(date, &mut Vec::new()).unwrap();
        assert_eq!(json, Json::String("1970-01-01T00:00:00.000Z".into()));
        let other = decode(&hex("d40501")).unwrap();
        assert!(to_json(other, &mut Vec::new()).is_err());
    }

    #[test]
    fn dates_read_as_javascript_writes_them_across_its_whole_range() {
        let iso = |millis| js_iso_date(millis);
        // `issued` of a handshake captured from Node, and its `time`.
        assert_eq!(iso(1_795_344_721_320).unwrap(), "2026-11-22T10:52:01.320Z");
        assert_eq!(iso(-1).unwrap(), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso(951_782_400_000).unwrap(), "2000-02-29T00:00:00.000Z");
        // new Date(-62198755200000).toISOString(), new Date(8.64e15) and
        // new Date(-8.64e15).
        assert_eq!(
            iso(-62_198_755_200_000).unwrap(),
            "-000001-01-01T00:00:00.000Z"
        );
        assert_eq!(
            iso(8_640_000_000_000_000).unwrap(),
            "+275760-09-13T00:00:00.000Z"
        );
        assert_eq!(
            iso(-8_640_000_000_000_000).unwrap(),
            "-271821-04-20T00:00:00.000Z"
        );
        assert_eq!(iso(8_640_000_000_000_001), None);
        // Timestamp 96 before the epoch (found by the redis_wire fuzzer:
        // it panicked in the date crate used before) and far beyond any
        // Date: null, as JSON.stringify writes an invalid Date.
        let before = decode(&hex("c70cff00000000ffffffffffffffff")).unwrap();
        let json = to_json(before, &mut Vec::new()).unwrap();
        assert_eq!(json, Json::String("1969-12-31T23:59:59.000Z".into()));
        let crash = decode(&hex("c70cfffffff8ffff8dc401002fffff")).unwrap();
        assert_eq!(to_json(crash, &mut Vec::new()).unwrap(), Json::Null);
    }

    #[test]
    fn a_placeholder_without_its_attachment_is_an_error() {
        let json: Json = serde_json::from_str(r#"[{"_placeholder":true,"num":1}]"#).unwrap();
        assert!(to_msgpack(&json, &[Bytes::new()]).is_err());
    }

    #[test]
    fn a_literal_placeholder_is_refused() {
        // {"_placeholder": true, "num": 0} as a msgpack map.
        let literal = hex("82ac5f706c616365686f6c646572c3a36e756d00");
        assert!(to_json(decode(&literal).unwrap(), &mut Vec::new()).is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        // 10,000 nested one-element arrays.
        let deep = vec![0x91; 10_000];
        assert!(decode(&deep).is_err());
    }

    #[test]
    fn buffers_render_as_node_json() {
        let json: Json = serde_json::from_str(r#"["x",{"_placeholder":true,"num":0}]"#).unwrap();
        let out = buffers_as_json(&json, &[Bytes::from_static(&[9, 8])]);
        assert_eq!(out.to_string(), r#"["x",{"type":"Buffer","data":[9,8]}]"#);
    }
}
