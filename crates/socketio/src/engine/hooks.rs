//! What an application can plug into the engine's HTTP side, as Node's
//! engine.io options and events allow: deciding on a handshake
//! (`allowRequest`), choosing session ids (`generateId`), the sticky-session
//! cookie (`cookie`), headers of the handshake and of every response
//! (`initial_headers`, `headers`), and hearing about refused requests
//! (`connection_error`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};

use crate::handshake::Handshake;

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Decides whether a handshake may open a session (Node's `allowRequest`).
/// A refusal is answered `403` with Node's code 4 and the refusal's
/// message (`"Forbidden"` for a plain `false`).
#[derive(Clone)]
pub struct AllowRequest(Arc<dyn Fn(&Handshake) -> CheckFuture + Send + Sync>);

impl AllowRequest {
    /// A synchronous check: true lets the handshake through.
    pub fn new(check: impl Fn(&Handshake) -> bool + Send + Sync + 'static) -> AllowRequest {
        AllowRequest(Arc::new(move |handshake| {
            let allowed = check(handshake);
            Box::pin(async move {
                if allowed {
                    Ok(())
                } else {
                    Err("Forbidden".to_owned())
                }
            })
        }))
    }

    /// An asynchronous check (a database, a token service): `Err(message)`
    /// refuses with that message (`"Forbidden"` when it is empty, as in
    /// Node). The future must own what it needs of the handshake.
    ///
    /// ```
    /// use socketio::AllowRequest;
    /// let check = AllowRequest::new_async(|handshake| {
    ///     let token = handshake.query_param("token");
    ///     async move {
    ///         match token.as_deref() {
    ///             Some("let-me-in") => Ok(()),
    ///             _ => Err("bad token".to_owned()),
    ///         }
    ///     }
    /// });
    /// ```
    pub fn new_async<F, Fut>(check: F) -> AllowRequest
    where
        F: Fn(&Handshake) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        AllowRequest(Arc::new(move |handshake| Box::pin(check(handshake))))
    }

    pub(crate) fn check(&self, handshake: &Handshake) -> CheckFuture {
        (self.0)(handshake)
    }
}

impl std::fmt::Debug for AllowRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AllowRequest(..)")
    }
}

/// Chooses a new session's id from its handshake (Node's `generateId`).
/// Ids must be unique among live sessions, as in Node. An id that is
/// empty, longer than 64 bytes or not URL-safe, or that a live session
/// already has, is replaced by a random one (and logged): ids travel in
/// query strings. Two handshakes given the same id at the same instant may
/// still race; a session ending never unregisters another one.
#[derive(Clone)]
pub struct GenerateId(pub(crate) Arc<dyn Fn(&Handshake) -> String + Send + Sync>);

impl GenerateId {
    /// Wraps a generator.
    pub fn new(generate: impl Fn(&Handshake) -> String + Send + Sync + 'static) -> GenerateId {
        GenerateId(Arc::new(generate))
    }
}

impl std::fmt::Debug for GenerateId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GenerateId(..)")
    }
}

/// The cookie carrying the session id on the handshake's response (Node's
/// `cookie` option), for load balancers that route by cookie (sticky
/// sessions). Defaults as in Node: `io`, `Path=/`, `HttpOnly`,
/// `SameSite=Lax`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cookie {
    /// Its name.
    pub name: String,
    /// Its `Path`.
    pub path: String,
    /// `HttpOnly`.
    pub http_only: bool,
    /// Its `SameSite` value (`Lax`, `Strict`, `None`), if any.
    pub same_site: Option<String>,
    /// `Secure`.
    pub secure: bool,
    /// Its `Max-Age` in seconds, if any.
    pub max_age: Option<u64>,
    /// Its `Domain`, if any.
    pub domain: Option<String>,
}

impl Default for Cookie {
    fn default() -> Self {
        Cookie {
            name: "io".into(),
            path: "/".into(),
            http_only: true,
            same_site: Some("Lax".into()),
            secure: false,
            max_age: None,
            domain: None,
        }
    }
}

impl Cookie {
    /// The cookie with name `name` and Node's other defaults.
    pub fn named(name: impl Into<String>) -> Cookie {
        Cookie {
            name: name.into(),
            ..Cookie::default()
        }
    }

    /// The `Set-Cookie` value for session `sid` (`None`, logged, when the
    /// name or an attribute is not valid in a header).
    pub(crate) fn header(&self, sid: &str) -> Option<HeaderValue> {
        let mut value = format!("{}={sid}", self.name);
        if !self.path.is_empty() {
            value.push_str(&format!("; Path={}", self.path));
        }
        if let Some(domain) = &self.domain {
            value.push_str(&format!("; Domain={domain}"));
        }
        if let Some(max_age) = self.max_age {
            value.push_str(&format!("; Max-Age={max_age}"));
        }
        if self.http_only {
            value.push_str("; HttpOnly");
        }
        if self.secure {
            value.push_str("; Secure");
        }
        if let Some(same_site) = &self.same_site {
            value.push_str(&format!("; SameSite={same_site}"));
        }
        let header = HeaderValue::from_str(&value).ok();
        if header.is_none() {
            tracing::warn!(cookie = %self.name, "the session cookie is not a valid header value; not set");
        }
        header
    }
}

type HeadersFn = dyn Fn(&mut HeaderMap, &HeaderMap) + Send + Sync;

/// Adds or changes headers of a response, seeing the request's headers
/// (Node's `initial_headers` and `headers` events): `(response, request)`.
/// As in Node, refusals (400, 403) get neither.
#[derive(Clone)]
pub struct HeadersHook(pub(crate) Arc<HeadersFn>);

impl HeadersHook {
    /// Wraps a hook.
    pub fn new(hook: impl Fn(&mut HeaderMap, &HeaderMap) + Send + Sync + 'static) -> HeadersHook {
        HeadersHook(Arc::new(hook))
    }
}

impl std::fmt::Debug for HeadersHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeadersHook(..)")
    }
}

/// A request the engine refused (Node's `connection_error` event): Node's
/// code (0 unknown transport, 1 unknown session, 2 bad handshake method, 3
/// bad request, 4 forbidden, 5 unsupported protocol version) and message,
/// with the request's headers and query.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionError {
    /// Node's code.
    pub code: u8,
    /// Node's message for the code (`"Forbidden"`, …).
    pub message: String,
    /// An `allow_request` refusal's own message, which the client got
    /// instead (Node's `err.context.message`).
    pub context: Option<String>,
    /// The refused request.
    pub request: Handshake,
}

/// Hears about every refused request (Node's `connection_error` event).
/// Runs on the request's task: keep it short.
#[derive(Clone)]
pub struct ConnectionErrorHook(pub(crate) Arc<dyn Fn(&ConnectionError) + Send + Sync>);

impl ConnectionErrorHook {
    /// Wraps a listener.
    pub fn new(hook: impl Fn(&ConnectionError) + Send + Sync + 'static) -> ConnectionErrorHook {
        ConnectionErrorHook(Arc::new(hook))
    }
}

impl std::fmt::Debug for ConnectionErrorHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionErrorHook(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_as_node_writes_them() {
        assert_eq!(
            Cookie::default().header("abc").unwrap(),
            "io=abc; Path=/; HttpOnly; SameSite=Lax"
        );
        let custom = Cookie {
            secure: true,
            max_age: Some(60),
            same_site: None,
            ..Cookie::named("sticky")
        };
        assert_eq!(
            custom.header("x").unwrap(),
            "sticky=x; Path=/; Max-Age=60; HttpOnly; Secure"
        );
    }
}
