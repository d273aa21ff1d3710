//! What the server knows of the HTTP request that opened a session (Node's
//! `socket.handshake`): headers, query, the client's address.

use std::net::SocketAddr;

/// The client's address, put into request extensions by the runtime crate's
/// listener (and by your own server when you embed this one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// The request that opened a session.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// Its headers.
    pub headers: http::HeaderMap,
    /// Its raw query string (without `?`).
    pub query: String,
    /// The client's address, when the listener recorded it.
    pub address: Option<SocketAddr>,
    /// The request's extensions: what a tower layer in front of the server
    /// (an auth layer, say) put on it. Every socket of the connection
    /// starts with a copy in its [`crate::Extensions`].
    pub extensions: http::Extensions,
    /// When the request arrived (Node's `handshake.issued` and `time`).
    pub issued: std::time::SystemTime,
}

impl Handshake {
    pub(crate) fn of<B>(request: &hyper::Request<B>) -> Handshake {
        Handshake {
            headers: own_headers(request.headers()),
            query: request.uri().query().unwrap_or("").to_owned(),
            address: request.extensions().get::<RemoteAddr>().map(|a| a.0),
            extensions: app_extensions(request.extensions()),
            issued: std::time::SystemTime::now(),
        }
    }

    /// When the request arrived, in milliseconds since the Unix epoch
    /// (Node's `handshake.issued`).
    pub fn issued_millis(&self) -> u64 {
        self.issued
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64)
    }

    /// When the request arrived, as JavaScript's `Date.toString()` writes
    /// it in UTC (Node's `handshake.time`): `Sun Dec 06 2026 23:50:00
    /// GMT+0000 (Coordinated Universal Time)`.
    pub fn time(&self) -> String {
        // `Sun, 06 Dec 2026 23:50:00 GMT`, reordered.
        let http = httpdate::fmt_http_date(self.issued);
        let parts: Vec<&str> = http.split([' ', ',']).filter(|p| !p.is_empty()).collect();
        match parts[..] {
            [weekday, day, month, year, time, _] => {
                format!(
                    "{weekday} {month} {day} {year} {time} GMT+0000 (Coordinated Universal Time)"
                )
            }
            _ => http,
        }
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| engineio_proto::server::percent_decode(value))
    }

    /// The query's `key=value` pairs as sent (not decoded), in order; a
    /// pair without `=` has an empty value.
    pub fn query_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.query
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
    }

    /// The first value of header `name`, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the application's layers put on the request, without what the
/// listener and hyper put there (the address, kept in `address`; the
/// pending upgrade): with `listen`/`serve`, a connection whose request
/// carries nothing else keeps an empty map, which allocates nothing (a
/// framework in front, such as axum, adds values of its own, kept too).
fn app_extensions(extensions: &http::Extensions) -> http::Extensions {
    let mut copy = extensions.clone();
    copy.remove::<RemoteAddr>();
    copy.remove::<hyper::upgrade::OnUpgrade>();
    if copy.is_empty() {
        http::Extensions::new()
    } else {
        copy
    }
}

/// A copy of `headers` in storage of its own. The values hyper parses are
/// slices of its 8 KiB read buffer: kept for the session's life, they would
/// keep that whole buffer resident per connection.
fn own_headers(headers: &http::HeaderMap) -> http::HeaderMap {
    headers
        .iter()
        .map(|(name, value)| {
            let mut owned = http::HeaderValue::from_bytes(value.as_bytes())
                .expect("bytes of a valid header value are a valid header value");
            owned.set_sensitive(value.is_sensitive());
            (name.clone(), owned)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_decoded() {
        let handshake = Handshake {
            headers: http::HeaderMap::new(),
            query: "EIO=4&transport=polling&name=J%C3%BCrgen+K&x".into(),
            address: None,
            extensions: http::Extensions::new(),
            issued: std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_796_601_000_123),
        };
        assert_eq!(handshake.query_param("name").as_deref(), Some("Jürgen K"));
        // As `new Date(1796601000123).toString()` in UTC.
        assert_eq!(handshake.issued_millis(), 1_796_601_000_123);
        assert_eq!(
            handshake.time(),
            "Sun Dec 06 2026 23:50:00 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(handshake.query_param("x").as_deref(), Some(""));
        assert_eq!(handshake.query_param("missing"), None);
    }

    #[test]
    fn owned_headers_keep_every_value_in_order() {
        let mut headers = http::HeaderMap::new();
        headers.append("x-many", http::HeaderValue::from_static("a"));
        headers.append("x-many", http::HeaderValue::from_static("b"));
        headers.insert("cookie", http::HeaderValue::from_static("k=v"));
        let owned = own_headers(&headers);
        let many: Vec<_> = owned.get_all("x-many").iter().collect();
        assert_eq!(many, ["a", "b"]);
        assert_eq!(owned.get("cookie").unwrap(), "k=v");
        assert_eq!(owned.len(), 3);
    }
}
