//! The arguments of an event or ack ([`Payload`]), and binary data inside
//! them ([`Binary`], [`bytes_as_binary`]) at any depth of a serde type.
//!
//! On the wire, binary data is a placeholder `{"_placeholder":true,"num":N}`
//! in the JSON plus the N-th attachment sent beside it. [`Binary`]'s serde
//! impls translate between the two through a thread-local *context*: the
//! attachment list of the payload being built (by [`Payload::single`],
//! [`Payload::args`]) or parsed (by [`Payload::parse`], [`Payload::first`],
//! [`FromPayload`]). This is sound because serde is synchronous: a context is
//! installed just before one serde call and removed right after it, with no
//! `.await` in between, so it never outlives the call or leaks into another
//! task, and the previous context is put back so nested payloads keep their
//! own lists. Outside a context, [`Binary`] fails with a serde error.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use socketio::payload::{Binary, Payload};
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! struct Upload {
//!     name: String,
//!     file: Binary,
//! }
//!
//! let upload = Upload { name: "a".into(), file: Binary::from(vec![0, 1]) };
//! let payload = Payload::single(&upload).unwrap();
//! assert_eq!(payload.args_json(), r#"[{"name":"a","file":{"_placeholder":true,"num":0}}]"#);
//! assert_eq!(payload.attachments(), &[vec![0u8, 1]]);
//! assert_eq!(payload.first::<Upload>().unwrap(), upload);
//! ```

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use bytes::Bytes;
use engineio_proto::Str;
use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// The arguments of an event or ack: a JSON array as text (arguments after
/// the event name, unparsed and byte-identical to what was sent) and the
/// binary attachments its placeholders refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    args: Str,
    attachments: Vec<Bytes>,
}

/// Why a payload could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The JSON does not match the requested type (this includes a bad or
    /// out-of-range binary placeholder).
    #[error("invalid payload: {0}")]
    Json(#[from] serde_json::Error),
    /// [`Payload::args`] was given a value that is not a JSON array.
    #[error("arguments must serialize to a JSON array")]
    NotAnArray,
    /// The arguments carry binary attachments, and an object of their own
    /// that looks like a binary placeholder (`{"_placeholder":true,"num":N}`)
    /// but indexes none of them: the server would refuse the packet and
    /// close the connection, so it is not sent.
    #[error(
        "an object in the arguments looks like a binary placeholder but indexes no attachment"
    )]
    InvalidPlaceholder,
}

/// No arguments (`[]`).
impl Default for Payload {
    fn default() -> Self {
        Payload::empty()
    }
}

impl Payload {
    /// A payload from a JSON array of arguments and its attachments.
    pub fn from_raw(args: Str, attachments: Vec<Bytes>) -> Payload {
        Payload { args, attachments }
    }

    /// A payload of no arguments (`[]`).
    pub fn empty() -> Payload {
        Payload::from_raw(Str::from_static("[]"), Vec::new())
    }

    /// A payload of one argument; each [`Binary`] inside `value` becomes an
    /// attachment.
    pub fn single<T: Serialize + ?Sized>(value: &T) -> Result<Payload, PayloadError> {
        // A one-element tuple serializes as `[value]`, with no copy of the text.
        let (args, attachments) = writing(|| serde_json::to_string(&(value,)))?;
        Ok(Payload::from_raw(Str::from(args), attachments))
    }

    /// A payload of several arguments from a value that serializes to a JSON
    /// array (a tuple, a `Vec`, an array); each [`Binary`] inside becomes an
    /// attachment. Anything else is [`PayloadError::NotAnArray`].
    ///
    /// ```
    /// use socketio::payload::{Binary, Payload};
    ///
    /// let payload = Payload::args(&("hi", Binary::from(vec![7u8]), 3)).unwrap();
    /// assert_eq!(payload.args_json(), r#"["hi",{"_placeholder":true,"num":0},3]"#);
    /// assert!(Payload::args(&"hi").is_err());
    /// ```
    pub fn args<T: Serialize + ?Sized>(value: &T) -> Result<Payload, PayloadError> {
        let (args, attachments) = writing(|| serde_json::to_string(value))?;
        // Compact JSON starts with `[` exactly when it is an array.
        if !args.starts_with('[') {
            return Err(PayloadError::NotAnArray);
        }
        Ok(Payload::from_raw(Str::from(args), attachments))
    }

    /// The arguments as a JSON array.
    pub fn args_json(&self) -> &str {
        &self.args
    }

    /// The binary attachments.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// Deserializes the whole argument array (use a tuple for several
    /// arguments, a `Vec` for any number); placeholders become [`Binary`].
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        parse_args(&self.args, self.attachments.clone())
    }

    /// Deserializes the first argument (from `null` when there is none);
    /// placeholders become [`Binary`].
    pub fn first<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        first_arg(&self.args, self.attachments.clone())
    }

    /// The JSON array and the attachments, for sending.
    pub(crate) fn into_parts(self) -> (Str, Vec<Bytes>) {
        (self.args, self.attachments)
    }

    /// Splits an event's data `["name", ...args]` into its name and payload.
    pub(crate) fn split_event(data: &str, attachments: Vec<Bytes>) -> Option<(String, Payload)> {
        let elements: Vec<&RawValue> = serde_json::from_str(data).ok()?;
        let (name, args) = elements.split_first()?;
        let name: String = match serde_json::from_str::<serde_json::Value>(name.get()).ok()? {
            serde_json::Value::String(name) => name,
            serde_json::Value::Number(n) => n.to_string(),
            _ => return None,
        };
        Some((
            name,
            Payload::from_raw(Str::from(join_array(args)), attachments),
        ))
    }

    /// The data of an event `["name", ...args]` carrying this payload.
    pub(crate) fn event_data(&self, event: &str) -> Result<Str, PayloadError> {
        let name = serde_json::to_string(event)?;
        let inner = self.args.trim();
        let inner = inner
            .strip_prefix('[')
            .and_then(|i| i.strip_suffix(']'))
            .unwrap_or("")
            .trim();
        Ok(Str::from(if inner.is_empty() {
            format!("[{name}]")
        } else {
            format!("[{name},{inner}]")
        }))
    }
}

fn join_array(elements: &[&RawValue]) -> String {
    let mut out = String::from("[");
    for (i, element) in elements.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(element.get());
    }
    out.push(']');
    out
}

/// What an event handler takes as its arguments (`Data(msg): Data<Message>`,
/// `Args((a, b)): Args<(A, B)>`, or the raw [`Payload`]): built from the
/// event's payload before the handler runs.
///
/// ```
/// use socketio::payload::{Args, Data, FromPayload, Payload};
///
/// let payload = Payload::args(&(5, "x")).unwrap();
/// let Data(n) = Data::<u32>::from_payload(payload.clone()).unwrap();
/// let Args((m, s)) = Args::<(u32, String)>::from_payload(payload).unwrap();
/// assert_eq!((n, m, s.as_str()), (5, 5, "x"));
/// ```
pub trait FromPayload: Sized + Send + 'static {
    /// Reads `payload` into `Self`.
    fn from_payload(payload: Payload) -> Result<Self, PayloadError>;
}

impl FromPayload for Payload {
    fn from_payload(payload: Payload) -> Result<Self, PayloadError> {
        Ok(payload)
    }
}

/// An event declared once, its name tied to its argument type: emitting
/// and listening with it cannot misspell the name or mistake the type.
/// Implement it with [`crate::typed_event!`] (or by hand):
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct ChatMessage {
///     text: String,
/// }
/// socketio::typed_event!(ChatMessage = "chat message");
///
/// # fn register(socket: socketio::SocketRef) {
/// socket.on_typed(|socket: socketio::SocketRef, message: ChatMessage, _ack| async move {
///     let _ = socket.broadcast().emit_typed(&message).await;
/// });
/// # }
/// ```
///
/// A listener whose argument is not the declared type does not compile:
///
/// ```compile_fail
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct ChatMessage { text: String }
/// # socketio::typed_event!(ChatMessage = "chat message");
/// # fn register(socket: socketio::SocketRef) {
/// // `String` is no `TypedEvent`: there is no event to listen to.
/// socket.on_typed(|_: socketio::SocketRef, message: String, _ack| async move {});
/// # }
/// ```
///
/// The value is the event's one argument; with `SPREAD`, a tuple (or a
/// tuple struct of two or more fields: serde writes a one-field one as
/// its field) whose fields are its arguments (`emit("move", x, y)`).
pub trait TypedEvent: Serialize + DeserializeOwned + Send + 'static {
    /// The event's name on the wire.
    const NAME: &'static str;
    /// Whether the value's fields are the arguments (`true`) or the value
    /// is the one argument (`false`, the default).
    const SPREAD: bool = false;

    /// The event's arguments.
    fn to_payload(&self) -> Result<Payload, PayloadError> {
        if Self::SPREAD {
            Payload::args(self)
        } else {
            Payload::single(self)
        }
    }

    /// Reads the event from its arguments.
    fn from_payload(payload: &Payload) -> Result<Self, PayloadError> {
        if Self::SPREAD {
            payload.parse()
        } else {
            payload.first()
        }
    }
}

/// Declares a [`TypedEvent`]: `typed_event!(Type = "name")` (the value is
/// the one argument) or `typed_event!(Type = "name", spread)` (its fields
/// are the arguments).
#[macro_export]
macro_rules! typed_event {
    ($ty:ty = $name:literal) => {
        impl $crate::payload::TypedEvent for $ty {
            const NAME: &'static str = $name;
        }
    };
    ($ty:ty = $name:literal, spread) => {
        impl $crate::payload::TypedEvent for $ty {
            const NAME: &'static str = $name;
            const SPREAD: bool = true;
        }
    };
}

/// The first argument, deserialized (as [`Payload::first`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Data<T>(pub T);

impl<T: DeserializeOwned + Send + 'static> FromPayload for Data<T> {
    fn from_payload(payload: Payload) -> Result<Self, PayloadError> {
        first_arg(&payload.args, payload.attachments).map(Data)
    }
}

/// The whole argument array, deserialized (as [`Payload::parse`]); use a
/// tuple for several arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Args<T>(pub T);

impl<T: DeserializeOwned + Send + 'static> FromPayload for Args<T> {
    fn from_payload(payload: Payload) -> Result<Self, PayloadError> {
        parse_args(&payload.args, payload.attachments).map(Args)
    }
}

/// Binary data inside a payload's arguments: serialized as a placeholder
/// plus an attachment of the payload being built, deserialized from a
/// placeholder of the payload being parsed (see the [module docs](self)).
/// Outside [`Payload`]'s methods and [`FromPayload`], both are serde errors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Binary(pub Bytes);

impl Binary {
    /// The bytes.
    pub fn into_inner(self) -> Bytes {
        self.0
    }
}

impl From<Bytes> for Binary {
    fn from(bytes: Bytes) -> Binary {
        Binary(bytes)
    }
}

impl From<Vec<u8>> for Binary {
    fn from(bytes: Vec<u8>) -> Binary {
        Binary(Bytes::from(bytes))
    }
}

impl From<&'static [u8]> for Binary {
    fn from(bytes: &'static [u8]) -> Binary {
        Binary(Bytes::from_static(bytes))
    }
}

impl Deref for Binary {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Binary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        write_placeholder(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Binary, D::Error> {
        read_placeholder(deserializer).map(Binary)
    }
}

/// [`Binary`]'s behaviour for a plain [`Bytes`] field.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// #[derive(Serialize, Deserialize)]
/// struct Upload {
///     #[serde(with = "socketio::payload::bytes_as_binary")]
///     file: bytes::Bytes,
/// }
/// ```
pub mod bytes_as_binary {
    use bytes::Bytes;
    use serde::{Deserializer, Serializer};

    /// Writes a placeholder and attaches `bytes` to the payload being built.
    pub fn serialize<S: Serializer>(bytes: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
        super::write_placeholder(bytes, serializer)
    }

    /// Reads a placeholder and returns its attachment from the payload being
    /// parsed.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        super::read_placeholder(deserializer)
    }
}

/// The attachment list the current serde call works on.
enum Context {
    /// Building a payload: the attachments pushed so far.
    Write(Vec<Bytes>),
    /// Parsing a payload: its attachments.
    Read(Vec<Bytes>),
}

thread_local! {
    // Set only around one synchronous serde call (see the module docs).
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// Runs `f` with `context` installed, then puts the previous context back
/// (also if `f` panics) and returns `f`'s result and the context `f` left.
fn scoped<R>(context: Context, f: impl FnOnce() -> R) -> (R, Option<Context>) {
    struct Restore(Option<Option<Context>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(previous) = self.0.take() {
                // try_*: never panic in a drop (thread teardown, unwinding).
                let _ = CONTEXT.try_with(|c| c.try_borrow_mut().map(|mut c| *c = previous));
            }
        }
    }
    let mut restore = Restore(Some(CONTEXT.with(|c| c.replace(Some(context)))));
    let result = f();
    let previous = restore.0.take().flatten();
    (result, CONTEXT.with(|c| c.replace(previous)))
}

/// Serializes with a fresh attachment list and returns the text and the list.
fn writing(
    f: impl FnOnce() -> serde_json::Result<String>,
) -> Result<(String, Vec<Bytes>), PayloadError> {
    let (json, context) = scoped(Context::Write(Vec::new()), f);
    let attachments = match context {
        Some(Context::Write(attachments)) => attachments,
        _ => Vec::new(),
    };
    Ok((json?, attachments))
}

fn parse_args<T: DeserializeOwned>(args: &str, attachments: Vec<Bytes>) -> Result<T, PayloadError> {
    Ok(scoped(Context::Read(attachments), || serde_json::from_str(args)).0?)
}

fn first_arg<T: DeserializeOwned>(args: &str, attachments: Vec<Bytes>) -> Result<T, PayloadError> {
    let (first, _) = scoped(Context::Read(attachments), || {
        let mut de = serde_json::Deserializer::from_str(args);
        let first = de.deserialize_seq(FirstElement(PhantomData))?;
        de.end()?;
        match first {
            Some(first) => Ok(first),
            None => serde_json::from_str("null"),
        }
    });
    Ok(first?)
}

/// Deserializes the first element of a sequence and skips the rest, without
/// collecting the elements.
struct FirstElement<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for FirstElement<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of arguments")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<T>, A::Error> {
        let first = seq.next_element()?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(first)
    }
}

fn write_placeholder<S: Serializer>(bytes: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
    let num = CONTEXT
        .try_with(|c| match &mut *c.borrow_mut() {
            Some(Context::Write(attachments)) => {
                attachments.push(bytes.clone());
                Some(attachments.len() - 1)
            }
            _ => None,
        })
        .ok()
        .flatten()
        .ok_or_else(|| {
            <S::Error as ser::Error>::custom(
                "binary data can only be serialized by Payload::single or Payload::args",
            )
        })?;
    // Keys in the order socket.io-parser writes them.
    let mut placeholder = serializer.serialize_struct("Placeholder", 2)?;
    placeholder.serialize_field("_placeholder", &true)?;
    placeholder.serialize_field("num", &num)?;
    placeholder.end()
}

fn read_placeholder<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
    let num = deserializer.deserialize_map(PlaceholderVisitor)?;
    let found = CONTEXT
        .try_with(|c| match &*c.borrow() {
            Some(Context::Read(attachments)) => Some(
                usize::try_from(num)
                    .ok()
                    .and_then(|num| attachments.get(num).cloned())
                    .ok_or(attachments.len()),
            ),
            _ => None,
        })
        .ok()
        .flatten();
    match found {
        Some(Ok(bytes)) => Ok(bytes),
        Some(Err(count)) => Err(de::Error::custom(format_args!(
            "binary placeholder refers to attachment {num} but the payload has {count}"
        ))),
        None => Err(de::Error::custom(
            "binary data can only be deserialized by Payload::parse, Payload::first or FromPayload",
        )),
    }
}

/// Reads `{"_placeholder":true,"num":N}` (in any key order, other keys
/// ignored, as socket.io-parser does) into N.
struct PlaceholderVisitor;

impl<'de> Visitor<'de> for PlaceholderVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a binary placeholder {"_placeholder":true,"num":N}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let (mut flag, mut num) = (None, None);
        while let Some(key) = map.next_key::<PlaceholderKey>()? {
            match key {
                PlaceholderKey::Flag if flag.is_some() => {
                    return Err(de::Error::duplicate_field("_placeholder"))
                }
                PlaceholderKey::Flag => flag = Some(map.next_value::<bool>()?),
                PlaceholderKey::Num if num.is_some() => {
                    return Err(de::Error::duplicate_field("num"))
                }
                PlaceholderKey::Num => num = Some(map.next_value::<u64>()?),
                PlaceholderKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match (flag, num) {
            (None, _) => Err(de::Error::missing_field("_placeholder")),
            (Some(false), _) => Err(de::Error::custom(
                "binary placeholder with `_placeholder` false",
            )),
            (_, None) => Err(de::Error::missing_field("num")),
            (Some(true), Some(num)) => Ok(num),
        }
    }
}

/// A placeholder's key, matched without allocating.
enum PlaceholderKey {
    Flag,
    Num,
    Other,
}

impl<'de> Deserialize<'de> for PlaceholderKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = PlaceholderKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a placeholder key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<PlaceholderKey, E> {
                Ok(match key {
                    "_placeholder" => PlaceholderKey::Flag,
                    "num" => PlaceholderKey::Num,
                    _ => PlaceholderKey::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn events_split_into_name_and_raw_arguments() {
        let (name, payload) = Payload::split_event(
            r#"["message",1,"2",{"3":[true],"a":{"z":1,"b":2}}]"#,
            vec![],
        )
        .unwrap();
        assert_eq!(name, "message");
        assert_eq!(
            payload.args_json(),
            r#"[1,"2",{"3":[true],"a":{"z":1,"b":2}}]"#
        );
        assert_eq!(
            payload.event_data("message-back").unwrap().as_str(),
            r#"["message-back",1,"2",{"3":[true],"a":{"z":1,"b":2}}]"#
        );
        let (name, payload) = Payload::split_event(r#"["only"]"#, vec![]).unwrap();
        assert_eq!((name.as_str(), payload.args_json()), ("only", "[]"));
        assert_eq!(payload.event_data("x").unwrap().as_str(), r#"["x"]"#);
        assert!(Payload::split_event("[]", vec![]).is_none());
        assert!(Payload::split_event("[null]", vec![]).is_none());
    }

    #[test]
    fn payloads_parse_into_types() {
        let payload = Payload::from_raw(Str::from(r#"[1,"two"]"#), vec![]);
        let (a, b): (u32, String) = payload.parse().unwrap();
        assert_eq!((a, b.as_str()), (1, "two"));
        assert_eq!(payload.first::<u32>().unwrap(), 1);
        assert!(payload.first::<String>().is_err());
        assert_eq!(Payload::single(&"x").unwrap().args_json(), r#"["x"]"#);
        // A missing first argument reads as null; trailing garbage is an error.
        assert_eq!(Payload::empty().first::<Option<u32>>().unwrap(), None);
        assert_eq!(
            Payload::empty().event_data("e").unwrap().as_str(),
            r#"["e"]"#
        );
        assert!(Payload::from_raw(Str::from("[1]x"), vec![])
            .first::<u32>()
            .is_err());
        let (args, attachments) = Payload::single(&1).unwrap().into_parts();
        assert_eq!((args.as_str(), attachments.len()), ("[1]", 0));
    }

    fn bin(bytes: &'static [u8]) -> Binary {
        Binary::from(bytes)
    }

    fn placeholder(num: usize) -> String {
        format!(r#"{{"_placeholder":true,"num":{num}}}"#)
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Part {
        num: u32,
        data: Binary,
    }

    // Binary in a struct in a Vec in a struct, beside plain numbers.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Upload {
        num: u32,
        parts: Vec<Part>,
        #[serde(with = "bytes_as_binary")]
        raw: Bytes,
        // Shaped like a placeholder but plain data: left alone both ways.
        lookalike: serde_json::Value,
    }

    #[test]
    fn binary_round_trips_at_depth() {
        let part = |num, data| Part { num, data };
        let upload = Upload {
            num: 1,
            parts: vec![part(0, bin(b"zero")), part(1, bin(&[1, 2]))],
            raw: Bytes::from_static(b"raw"),
            lookalike: serde_json::json!({"_placeholder": true, "num": 0}),
        };
        let payload = Payload::single(&upload).unwrap();
        let [p0, p1, p2] = [0, 1, 2].map(placeholder);
        let expected = format!(
            r#"[{{"num":1,"parts":[{{"num":0,"data":{p0}}},{{"num":1,"data":{p1}}}],"raw":{p2},"lookalike":{p0}}}]"#
        );
        assert_eq!(payload.args_json(), expected);
        assert_eq!(payload.attachments(), &[&b"zero"[..], &[1, 2], b"raw"]);
        assert_eq!(payload.first::<Upload>().unwrap(), upload);
        assert_eq!(payload.parse::<(Upload,)>().unwrap().0, upload);
        // Placeholders may come in any key order, with extra keys, repeated.
        let payload = Payload::from_raw(
            Str::from(r#"[{"num":1,"x":[{}],"_placeholder":true},{"_placeholder":true,"num":1}]"#),
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
        );
        assert_eq!(
            payload.parse::<[Binary; 2]>().unwrap(),
            [bin(b"b"), bin(b"b")]
        );
    }

    #[test]
    fn binary_outside_a_context_is_an_error() {
        let err = serde_json::to_string(&bin(b"x")).unwrap_err();
        assert!(err.to_string().contains("Payload::single"), "{err}");
        let err = serde_json::from_str::<Binary>(&placeholder(0)).unwrap_err();
        assert!(err.to_string().contains("Payload::parse"), "{err}");
        // The context is gone after a payload call, even a failed one.
        let failed = Payload::from_raw(Str::from("[1]"), vec![]).first::<Binary>();
        assert!(failed.is_err());
        assert!(serde_json::from_str::<Binary>(&placeholder(0)).is_err());
    }

    #[test]
    fn bad_placeholders_are_errors() {
        let bad = r#"{"_placeholder":true,"num":1}
            {"_placeholder":true,"num":18446744073709551615}
            {"_placeholder":true,"num":-1}
            {"_placeholder":true,"num":0.5}
            {"_placeholder":true,"num":"0"}
            {"_placeholder":false,"num":0}
            {"_placeholder":"true","num":0}
            {"num":0}
            {"_placeholder":true}
            {"_placeholder":true,"num":0,"num":0}
            [true,0]
            "AA=="
            null"#;
        for bad in bad.lines() {
            let payload = Payload::from_raw(Str::from(format!("[{bad}]")), vec![Bytes::new()]);
            assert!(payload.first::<Binary>().is_err(), "{bad}");
        }
        let payload = Payload::from_raw(Str::from(format!("[{}]", placeholder(1))), vec![]);
        let err = payload.first::<Binary>().unwrap_err().to_string();
        assert!(err.contains("attachment 1 but the payload has 0"), "{err}");
    }

    #[test]
    fn args_are_several_arguments() {
        let payload = Payload::args(&("a".to_string(), bin(&[9]), 7u32)).unwrap();
        let expected = format!(r#"["a",{},7]"#, placeholder(0));
        assert_eq!(payload.args_json(), expected);
        assert_eq!(payload.attachments(), &[&[9][..]]);
        let args = payload.parse::<(String, Binary, u32)>().unwrap();
        assert_eq!(args, ("a".to_string(), bin(&[9]), 7));
        assert_eq!(Payload::args(&[1, 2]).unwrap().args_json(), "[1,2]");
        assert_eq!(Payload::args(&Vec::<u8>::new()).unwrap(), Payload::empty());
        let json = serde_json::json!({"a": 1});
        for err in [
            Payload::args(&"a"),
            Payload::args(&()),
            Payload::args(&json),
        ] {
            assert!(matches!(err, Err(PayloadError::NotAnArray)));
        }
        // `single` is one argument, even when that argument is an array.
        assert_eq!(Payload::single(&[1, 2]).unwrap().args_json(), "[[1,2]]");
    }

    /// Builds a whole payload of its own while being serialized.
    struct Nested;

    impl Serialize for Nested {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let inner = Payload::args(&(bin(b"in1"), bin(b"in2"))).map_err(ser::Error::custom)?;
            assert_eq!(inner.attachments(), &[&b"in1"[..], b"in2"]);
            inner.args_json().serialize(serializer)
        }
    }

    #[test]
    fn nested_contexts_keep_their_own_attachments() {
        let payload = Payload::args(&(bin(b"out1"), Nested, bin(b"out2"))).unwrap();
        assert_eq!(payload.attachments(), &[&b"out1"[..], b"out2"]);
        let [p0, p1] = [0, 1].map(placeholder);
        let inner = serde_json::to_string(&format!("[{p0},{p1}]")).unwrap();
        assert_eq!(payload.args_json(), format!("[{p0},{inner},{p1}]"));
    }

    #[test]
    fn from_payload_reads_data_args_and_payload() {
        let payload = Payload::args(&(bin(b"x"), 2, bin(b"y"))).unwrap();
        assert_eq!(Payload::from_payload(payload.clone()).unwrap(), payload);
        let data = Data::<Binary>::from_payload(payload.clone()).unwrap();
        assert_eq!(data, Data(bin(b"x")));
        let args = Args::<(Binary, u8, Binary)>::from_payload(payload.clone()).unwrap();
        assert_eq!(args, Args((bin(b"x"), 2, bin(b"y"))));
        assert!(Data::<String>::from_payload(payload.clone()).is_err());
        assert!(Args::<(Binary, u8)>::from_payload(payload).is_err());
        let none = Data::<Option<u8>>::from_payload(Payload::empty()).unwrap();
        assert_eq!(none, Data(None));
    }

    proptest! {
        #[test]
        fn any_binaries_round_trip(blobs in prop::collection::vec(any::<Vec<u8>>(), 0..8)) {
            let binaries: Vec<Binary> = blobs.into_iter().map(Binary::from).collect();
            let payload = Payload::single(&binaries).unwrap();
            let placeholders: Vec<String> = (0..binaries.len()).map(placeholder).collect();
            prop_assert_eq!(payload.args_json(), format!("[[{}]]", placeholders.join(",")));
            prop_assert_eq!(payload.attachments().len(), binaries.len());
            prop_assert_eq!(payload.first::<Vec<Binary>>().unwrap(), binaries);
        }
    }
}
