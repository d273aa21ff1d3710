//! JSON with binary data in it, both ways, by one convention: a byte string
//! is written `{"_binary":"<base64>"}`.
//!
//! On the wire Socket.IO carries binary data as attachments beside the JSON,
//! which holds a placeholder `{"_placeholder":true,"num":N}` where the bytes
//! belong. A placeholder alone means nothing to a reader of `sio`'s output,
//! so received payloads are rendered with each placeholder replaced by its
//! bytes in base64; and the same form typed on the command line becomes an
//! attachment, so what `sio` prints can be sent back as it is.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use runtime_tokio::socketio::{Binary, Payload, PayloadError};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// The key of the one-key object that stands for binary data.
pub const BINARY_KEY: &str = "_binary";

/// Standard base64; padding is written, and optional when read, because
/// hand-typed base64 often lacks it.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One argument of an event to send: JSON in which `{"_binary":"<base64>"}`
/// objects are binary attachments.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A value with no binary data inside, sent as it is.
    Json(Value),
    /// Bytes, sent as an attachment.
    Binary(Binary),
    /// An array with binary data somewhere inside.
    Array(Vec<Arg>),
    /// An object with binary data somewhere inside, its keys in order.
    Object(Vec<(String, Arg)>),
}

impl Arg {
    /// Parses one argument from the command line.
    pub fn parse(text: &str) -> Result<Arg, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|error| format!("invalid JSON: {error}"))?;
        Arg::from_value(value)
    }

    /// Turns the `{"_binary":…}` objects of `value` into binary data; an
    /// object with that key whose value is not base64 text is an error
    /// rather than sent as JSON, since it is most likely a typo.
    pub fn from_value(value: Value) -> Result<Arg, String> {
        if !contains_binary(&value) {
            return Ok(Arg::Json(value));
        }
        match value {
            Value::Object(map) => match binary_of(&map) {
                Some(Ok(bytes)) => Ok(Arg::Binary(Binary::from(bytes))),
                Some(Err(error)) => Err(error),
                None => map
                    .into_iter()
                    .map(|(key, value)| Ok((key, Arg::from_value(value)?)))
                    .collect::<Result<_, String>>()
                    .map(Arg::Object),
            },
            Value::Array(items) => items
                .into_iter()
                .map(Arg::from_value)
                .collect::<Result<_, String>>()
                .map(Arg::Array),
            // `contains_binary` is false for scalars.
            scalar => Ok(Arg::Json(scalar)),
        }
    }
}

/// Whether `value` has a `{"_binary":…}` object anywhere inside.
fn contains_binary(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.contains_key(BINARY_KEY) || map.values().any(contains_binary),
        Value::Array(items) => items.iter().any(contains_binary),
        _ => false,
    }
}

/// The bytes of a `{"_binary":"<base64>"}` object; `None` when `map` is not
/// one.
fn binary_of(map: &Map<String, Value>) -> Option<Result<Vec<u8>, String>> {
    if map.len() != 1 {
        return None;
    }
    let encoded = map.get(BINARY_KEY)?;
    Some(match encoded {
        Value::String(text) => BASE64
            .decode(text)
            .map_err(|error| format!("invalid base64 in {BINARY_KEY}: {error}")),
        _ => Err(format!("{BINARY_KEY} must be a base64 string")),
    })
}

/// Serializes through [`Binary`], which the payload being built turns into
/// placeholders and attachments.
impl Serialize for Arg {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Arg::Json(value) => value.serialize(serializer),
            Arg::Binary(binary) => binary.serialize(serializer),
            Arg::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Arg::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

/// The payload of an event with these arguments.
pub fn payload(args: &[Arg]) -> Result<Payload, PayloadError> {
    Payload::args(args)
}

/// The arguments of `payload` as a one-line JSON array, each placeholder
/// replaced by `{"_binary":"<base64>"}`.
pub fn render_args(payload: &Payload) -> String {
    let json = payload.args_json();
    // The common case needs no parsing: the server's JSON is already one
    // line with nothing to replace (JSON strings cannot hold raw newlines,
    // so any newline is whitespace between tokens).
    if payload.attachments().is_empty() && !json.contains(['\n', '\r']) {
        return json.to_owned();
    }
    match serde_json::from_str::<Value>(json) {
        Ok(mut value) => {
            replace_placeholders(&mut value, payload);
            value.to_string()
        }
        // Not reachable for payloads the client accepted (it parsed them to
        // split the event name off); keep the line JSON anyway.
        Err(_) => Value::String(json.to_owned()).to_string(),
    }
}

fn replace_placeholders(value: &mut Value, payload: &Payload) {
    match value {
        Value::Object(map) => {
            if let Some(bytes) = placeholder(map).and_then(|num| payload.attachments().get(num)) {
                let mut binary = Map::new();
                binary.insert(BINARY_KEY.to_owned(), Value::String(BASE64.encode(bytes)));
                *map = binary;
            } else {
                for item in map.values_mut() {
                    replace_placeholders(item, payload);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                replace_placeholders(item, payload);
            }
        }
        _ => {}
    }
}

/// The attachment number of a `{"_placeholder":true,"num":N}` object.
fn placeholder(map: &Map<String, Value>) -> Option<usize> {
    if map.len() != 2 || map.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    map.get("num")?.as_u64()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_json_is_sent_and_printed_as_it_is() {
        let args = [
            Arg::parse("1").unwrap(),
            Arg::parse(r#"{"a":[true,null]}"#).unwrap(),
        ];
        let payload = payload(&args).unwrap();
        assert_eq!(payload.args_json(), r#"[1,{"a":[true,null]}]"#);
        assert!(payload.attachments().is_empty());
        assert_eq!(render_args(&payload), r#"[1,{"a":[true,null]}]"#);
    }

    #[test]
    fn binary_objects_become_attachments_and_come_back_as_base64() {
        let args = [
            Arg::parse(r#"{"file":{"_binary":"AQID"},"name":"x"}"#).unwrap(),
            Arg::parse(r#"{"_binary":"/w"}"#).unwrap(),
        ];
        let payload = payload(&args).unwrap();
        assert_eq!(
            payload.args_json(),
            r#"[{"file":{"_placeholder":true,"num":0},"name":"x"},{"_placeholder":true,"num":1}]"#
        );
        assert_eq!(payload.attachments(), &[vec![1u8, 2, 3], vec![255u8]]);
        assert_eq!(
            render_args(&payload),
            r#"[{"file":{"_binary":"AQID"},"name":"x"},{"_binary":"/w=="}]"#
        );
    }

    #[test]
    fn bad_json_and_bad_base64_are_refused() {
        assert!(Arg::parse("{oops").unwrap_err().starts_with("invalid JSON"));
        assert!(Arg::parse(r#"{"_binary":"%%"}"#).is_err());
        assert!(Arg::parse(r#"[{"_binary":3}]"#).is_err());
        // Another key beside it: an ordinary object.
        assert!(matches!(
            Arg::parse(r#"{"_binary":"AQID","x":1}"#).unwrap(),
            Arg::Object(_)
        ));
    }

    #[test]
    fn multi_line_json_is_printed_on_one_line() {
        let payload = Payload::from_raw("[{\n  \"a\": 1\n}]".into(), Vec::new());
        assert_eq!(render_args(&payload), r#"[{"a":1}]"#);
    }

    #[test]
    fn placeholders_out_of_range_stay_as_they_are() {
        let attachment = Binary::from(vec![1u8]).into_inner();
        let payload = Payload::from_raw(
            r#"[{"_placeholder":true,"num":3}]"#.into(),
            vec![attachment],
        );
        assert_eq!(render_args(&payload), r#"[{"_placeholder":true,"num":3}]"#);
    }
}
