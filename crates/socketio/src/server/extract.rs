//! Event handlers as functions of extractors, in the manner of axum: each
//! argument of a handler says what it wants of the event, in any order and
//! number, and the compiler checks every one.
//!
//! ```
//! # fn register(socket: socketio::SocketRef) {
//! use socketio::extract::{Ack, Data, Event, Extension, State};
//! use socketio::SocketRef;
//!
//! #[derive(Clone)]
//! struct Db; // global state, given with `SocketIoConfig::with_state`
//! #[derive(Clone)]
//! struct User(String); // per socket, set by a connection middleware
//!
//! #[derive(serde::Deserialize)]
//! struct Message { text: String }
//!
//! socket.on(
//!     "message",
//!     |socket: SocketRef, Data(message): Data<Message>, Extension(user): Extension<User>, ack: Ack| async move {
//!         let _ = socket.to("room").emit("message", &(user.0, message.text)).await;
//!         let _ = ack.send(&"received").await;
//!     },
//! );
//! socket.on("anything", |Event(name): Event, State(_db): State<Db>| async move {
//!     println!("got {name}");
//! });
//! # }
//! ```
//!
//! An argument that cannot be extracted (arguments of the wrong type, a
//! state or extension that was never set) stops the event: the handler does
//! not run and the error goes to the socket's
//! [`on_error`](SocketRef::on_error) listeners, as
//! [`EventError::InvalidArguments`]. Wrap an extractor in `Option` to get
//! `None` instead, or use [`TryData`] to see the error yourself.
//!
//! Write your own by implementing [`FromEvent`].

use std::any::type_name;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::socket::{AckSender, EventError, SocketRef};
use crate::handshake::Handshake;
use crate::listeners::ListenerFuture;
use crate::payload::{Payload, PayloadError, TypedEvent};

pub use crate::payload::{Args, Data};

/// One incoming event as its handler's extractors see it.
pub struct EventContext {
    pub(crate) socket: SocketRef,
    pub(crate) event: Arc<str>,
    pub(crate) payload: Payload,
    pub(crate) ack: Option<AckSender>,
    /// Why the socket left, for a disconnect handler.
    pub(crate) reason: Option<&'static str>,
}

impl EventContext {
    /// The socket the event came on.
    pub fn socket(&self) -> &SocketRef {
        &self.socket
    }

    /// The event's name.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// Its arguments, as they came.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The ack sender, when the client awaits an answer.
    pub fn ack(&self) -> Option<&AckSender> {
        self.ack.as_ref()
    }

    /// Why the socket left, in a disconnect handler.
    pub fn reason(&self) -> Option<&'static str> {
        self.reason
    }
}

/// Why an argument of a handler could not be extracted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The event's arguments do not deserialize into the asked type.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The handler takes an [`Ack`] but the client awaits no answer.
    #[error("the client awaits no ack")]
    NoAck,
    /// No global state of this type was given to the server.
    #[error("no state of type {0}")]
    MissingState(&'static str),
    /// The socket has no extension of this type.
    #[error("no extension of type {0}")]
    MissingExtension(&'static str),
    /// A [`Reason`] was asked for outside a disconnect handler.
    #[error("no disconnect reason outside a disconnect handler")]
    NoReason,
}

/// What a handler argument is made from: implement it for your own
/// extractors. It reads the event without consuming it, so extractors can
/// come in any order and number.
pub trait FromEvent: Sized + Send + 'static {
    /// Extracts `Self` from the event.
    fn from_event(event: &EventContext) -> Result<Self, ExtractError>;
}

impl FromEvent for SocketRef {
    fn from_event(event: &EventContext) -> Result<Self, ExtractError> {
        Ok(event.socket.clone())
    }
}

impl FromEvent for Payload {
    fn from_event(event: &EventContext) -> Result<Self, ExtractError> {
        Ok(event.payload.clone())
    }
}

impl<T: DeserializeOwned + Send + 'static> FromEvent for Data<T> {
    fn from_event(event: &EventContext) -> Result<Self, ExtractError> {
        Ok(Data(event.payload.first()?))
    }
}

impl<T: DeserializeOwned + Send + 'static> FromEvent for Args<T> {
    fn from_event(event: &EventContext) -> Result<Self, ExtractError> {
        Ok(Args(event.payload.parse()?))
    }
}

/// The first argument, or why it did not deserialize into `T`: the handler
/// runs either way.
#[derive(Debug)]
pub struct TryData<T>(pub Result<T, PayloadError>);

impl<T: DeserializeOwned + Send + 'static> FromEvent for TryData<T> {
    fn from_event(event: &EventContext) -> Result<Self, ExtractError> {
        Ok(TryData(event.payload.first()))
    }
}

/// The event read as its declared [`TypedEvent`] type.
#[derive(Debug, Clone)]
pub struct Typed<E>(pub E);

impl<E: TypedEvent> FromEvent for Typed<E> {
    fn from_event(event: &EventContext) -> Result<Self, ExtractError> {
        Ok(Typed(E::from_payload(&event.payload)?))
    }
}

/// The event's binary attachments, in order (the placeholders in its
/// arguments point into them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attachments(pub Vec<Bytes>);

impl FromEvent for Attachments {
    fn from_event(event: &EventContext) -> Result<Self, ExtractError> {
        Ok(Attachments(event.payload.attachments().to_vec()))
    }
}

/// The event's name (useful in a handler shared by several events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event(pub String);

impl FromEvent for Event {
    fn from_event(event: &EventContext) -> Result<Self, ExtractError> {
        Ok(Event(event.event.to_string()))
    }
}

/// The answer to an event whose client awaits one. As an argument, the
/// handler runs only for events that ask for an ack; take `Option<Ack>` to
/// run for both.
pub type Ack = AckSender;

impl FromEvent for AckSender {
    fn from_event(event: &EventContext) -> Result<Self, ExtractError> {
        event.ack.clone().ok_or(ExtractError::NoAck)
    }
}

/// Global state given to the server with
/// [`SocketIoConfig::with_state`](crate::SocketIoConfig::with_state),
/// cloned for each handler (keep it cheap to clone: an `Arc`, a pool).
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromEvent for State<T> {
    fn from_event(event: &EventContext) -> Result<Self, ExtractError> {
        event
            .socket
            .state::<T>()
            .map(State)
            .ok_or(ExtractError::MissingState(type_name::<T>()))
    }
}

/// A typed value of the socket's extensions (see
/// [`SocketRef::extensions`]), cloned.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extension<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromEvent for Extension<T> {
    fn from_event(event: &EventContext) -> Result<Self, ExtractError> {
        event
            .socket
            .extensions()
            .get::<T>()
            .map(Extension)
            .ok_or(ExtractError::MissingExtension(type_name::<T>()))
    }
}

/// Why the socket left (Node's reason strings: `"client namespace
/// disconnect"`, `"transport close"`, `"ping timeout"`, …), in an
/// [`on_disconnect`](SocketRef::on_disconnect) or
/// [`on_disconnecting`](SocketRef::on_disconnecting) handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason(pub &'static str);

impl FromEvent for Reason {
    fn from_event(event: &EventContext) -> Result<Self, ExtractError> {
        event.reason.map(Reason).ok_or(ExtractError::NoReason)
    }
}

/// The transport the connection runs on now: `"polling"` or `"websocket"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport(pub &'static str);

impl FromEvent for Transport {
    fn from_event(event: &EventContext) -> Result<Self, ExtractError> {
        Ok(Transport(event.socket.transport()))
    }
}

/// The request that opened the connection (headers, query, address).
impl FromEvent for Arc<Handshake> {
    fn from_event(event: &EventContext) -> Result<Self, ExtractError> {
        Ok(event.socket.inner.handshake.clone())
    }
}

/// `None` where the extractor fails: the handler runs either way.
impl<T: FromEvent> FromEvent for Option<T> {
    fn from_event(event: &EventContext) -> Result<Self, ExtractError> {
        Ok(T::from_event(event).ok())
    }
}

/// An event handler: an `async` function or closure whose arguments are
/// all [`FromEvent`] extractors (up to 12 of them). `T` is the tuple of
/// their types; you never name it.
pub trait EventHandler<T>: Send + Sync + 'static {
    /// Extracts the arguments and starts the handler, or reports why an
    /// argument could not be extracted.
    fn call(&self, event: EventContext) -> ListenerFuture;
}

/// Reports an extraction failure to the socket's error listeners.
fn refuse(event: EventContext, error: ExtractError) -> ListenerFuture {
    let EventContext { socket, event, .. } = event;
    Box::pin(async move {
        socket
            .report(EventError::InvalidArguments {
                event: event.to_string(),
                error,
            })
            .await
    })
}

macro_rules! event_handler {
    ($($arg:ident),*) => {
        impl<F, Fut, $($arg,)*> EventHandler<($($arg,)*)> for F
        where
            F: Fn($($arg),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = ()> + Send + 'static,
            $($arg: FromEvent,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn call(&self, event: EventContext) -> ListenerFuture {
                $(
                    let $arg = match $arg::from_event(&event) {
                        Ok(value) => value,
                        Err(error) => return refuse(event, error),
                    };
                )*
                Box::pin(self($($arg),*))
            }
        }
    };
}

event_handler!();
event_handler!(A1);
event_handler!(A1, A2);
event_handler!(A1, A2, A3);
event_handler!(A1, A2, A3, A4);
event_handler!(A1, A2, A3, A4, A5);
event_handler!(A1, A2, A3, A4, A5, A6);
event_handler!(A1, A2, A3, A4, A5, A6, A7);
event_handler!(A1, A2, A3, A4, A5, A6, A7, A8);
event_handler!(A1, A2, A3, A4, A5, A6, A7, A8, A9);
event_handler!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10);
event_handler!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11);
event_handler!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12);
