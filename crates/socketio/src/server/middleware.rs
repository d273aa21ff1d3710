//! Connection middlewares (Node's `namespace.use`): run in order before a
//! socket joins its namespace; an error refuses the join with a
//! CONNECT_ERROR the client sees as `connect_error` (message and data).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use engineio_proto::Str;
use serde::de::DeserializeOwned;

use crate::extensions::Extensions;
use crate::handshake::Handshake;
use crate::locks::lock;

/// What a middleware sees of a joining socket. Its data and extensions
/// become the socket's: a middleware that checks a token can leave the user
/// there for every handler (Node's `socket.data.user = …` in `io.use`).
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    pub(crate) nsp: Str,
    pub(crate) auth: Str,
    pub(crate) handshake: Arc<Handshake>,
    /// Shared by the clones each middleware gets.
    pub(crate) data: Arc<Mutex<serde_json::Value>>,
    pub(crate) extensions: Arc<Extensions>,
}

impl ConnectRequest {
    /// The namespace being joined.
    pub fn namespace(&self) -> &str {
        &self.nsp
    }

    /// The request that opened the connection: headers, query, address.
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// The auth object as JSON (`{}` when the client sent none).
    pub fn auth_json(&self) -> &str {
        &self.auth
    }

    /// The auth object, deserialized.
    pub fn auth<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.auth)
    }

    /// The socket's data so far (`null` until a middleware sets it).
    pub fn data(&self) -> serde_json::Value {
        lock(&self.data).clone()
    }

    /// Sets the socket's data ([`crate::SocketRef::data`]).
    pub fn set_data(&self, data: serde_json::Value) {
        *lock(&self.data) = data;
    }

    /// The socket's typed extensions: they start with the HTTP request's
    /// (what a tower layer put there) and become the socket's
    /// ([`crate::SocketRef::extensions`], the
    /// [`Extension`](crate::extract::Extension) extractor).
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }
}

/// A refusal: the client's `connect_error` gets `message` and `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectError {
    message: String,
    data: Option<serde_json::Value>,
}

impl ConnectError {
    /// A refusal with this message.
    pub fn new(message: impl Into<String>) -> ConnectError {
        ConnectError {
            message: message.into(),
            data: None,
        }
    }

    /// Attaches data (Node's `err.data`).
    pub fn with_data(mut self, data: serde_json::Value) -> ConnectError {
        self.data = Some(data);
        self
    }

    /// The CONNECT_ERROR payload `{"message":…,"data":…}`.
    pub(crate) fn to_json(&self) -> Str {
        let mut object = serde_json::Map::new();
        object.insert("message".into(), self.message.clone().into());
        if let Some(data) = &self.data {
            object.insert("data".into(), data.clone());
        }
        Str::from(serde_json::Value::Object(object).to_string())
    }
}

type MiddlewareFuture = Pin<Box<dyn Future<Output = Result<(), ConnectError>> + Send>>;
pub(crate) type Middleware = Arc<dyn Fn(ConnectRequest) -> MiddlewareFuture + Send + Sync>;

/// Boxes a middleware closure.
pub(crate) fn boxed<F, Fut>(middleware: F) -> Middleware
where
    F: Fn(ConnectRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
{
    Arc::new(move |request| Box::pin(middleware(request)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_carry_message_and_data() {
        let error =
            ConnectError::new("unauthorized").with_data(serde_json::json!({"reason": "bad token"}));
        assert_eq!(
            error.to_json().as_str(),
            r#"{"message":"unauthorized","data":{"reason":"bad token"}}"#
        );
        assert_eq!(
            ConnectError::new("no").to_json().as_str(),
            r#"{"message":"no"}"#
        );
    }
}
