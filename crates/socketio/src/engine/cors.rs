//! Cross-origin resource sharing (Node's `cors` option, with the meaning
//! the `cors` npm package gives it): which pages on other origins may talk
//! to the server, and the answers to browsers' preflight requests.

use std::time::Duration;

use hyper::header::{self, HeaderMap, HeaderValue};

/// Which origins may use the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorsOrigin {
    /// Any page (`Access-Control-Allow-Origin: *`). Browsers refuse `*`
    /// with credentials: use [`CorsOrigin::Reflect`] for that.
    Any,
    /// Any page, answered with its own origin (Node's `origin: true`).
    Reflect,
    /// Only these origins, e.g. `https://example.com` (exact match).
    List(Vec<String>),
}

/// Cross-origin settings. Without them (the default, as in Node) no CORS
/// header is sent and browsers only let same-origin pages connect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cors {
    /// Which origins are allowed.
    pub origin: CorsOrigin,
    /// Whether pages may send cookies (`withCredentials`).
    pub credentials: bool,
    /// Methods announced to preflights.
    pub methods: Vec<String>,
    /// Request headers announced to preflights; `None` allows whatever the
    /// preflight asks for (the `cors` package's default).
    pub allowed_headers: Option<Vec<String>>,
    /// How long browsers may cache a preflight answer.
    pub max_age: Option<Duration>,
}

impl Cors {
    /// Allows `origin`.
    pub fn new(origin: CorsOrigin) -> Cors {
        Cors {
            origin,
            credentials: false,
            methods: ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]
                .map(String::from)
                .to_vec(),
            allowed_headers: None,
            max_age: None,
        }
    }

    /// Allows any origin (`*`).
    pub fn any() -> Cors {
        Cors::new(CorsOrigin::Any)
    }

    /// Allows exactly these origins.
    pub fn origins<I, S>(origins: I) -> Cors
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cors::new(CorsOrigin::List(
            origins.into_iter().map(Into::into).collect(),
        ))
    }

    /// Lets pages send cookies.
    pub fn with_credentials(mut self) -> Cors {
        self.credentials = true;
        self
    }

    /// The headers to add to the answer of a request with these headers;
    /// `preflight` for an `OPTIONS` request. Empty for an origin that is
    /// not allowed (the browser then blocks the page).
    pub(crate) fn headers(&self, request: &HeaderMap, preflight: bool) -> HeaderMap {
        let mut out = HeaderMap::new();
        let origin = request.get(header::ORIGIN);
        let allowed = match (&self.origin, origin) {
            (CorsOrigin::Any, _) => Some(HeaderValue::from_static("*")),
            (CorsOrigin::Reflect, Some(origin)) => Some(origin.clone()),
            (CorsOrigin::List(list), Some(origin)) => list
                .iter()
                .any(|allowed| origin.as_bytes() == allowed.as_bytes())
                .then(|| origin.clone()),
            (_, None) => None,
        };
        if self.origin != CorsOrigin::Any {
            out.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        let Some(allowed) = allowed else {
            return out;
        };
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        if self.credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if preflight {
            if let Ok(methods) = HeaderValue::from_str(&self.methods.join(",")) {
                out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
            }
            let headers = match &self.allowed_headers {
                Some(list) => HeaderValue::from_str(&list.join(",")).ok(),
                None => request.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned(),
            };
            if let Some(headers) = headers {
                out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, headers);
            }
            if let Some(max_age) = self.max_age {
                out.insert(header::ACCESS_CONTROL_MAX_AGE, max_age.as_secs().into());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(origin: Option<&'static str>, asks: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
        }
        if let Some(asks) = asks {
            headers.insert(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                HeaderValue::from_static(asks),
            );
        }
        headers
    }

    fn get(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
        headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn any_origin_is_a_star() {
        let out = Cors::any().headers(&request(Some("http://a.test"), None), false);
        assert_eq!(get(&out, header::ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
        assert_eq!(get(&out, header::VARY), None);
        assert_eq!(get(&out, header::ACCESS_CONTROL_ALLOW_METHODS), None);
    }

    #[test]
    fn listed_origins_are_echoed_and_others_get_nothing() {
        let cors = Cors::origins(["http://a.test"]).with_credentials();
        let out = cors.headers(&request(Some("http://a.test"), None), false);
        assert_eq!(
            get(&out, header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some("http://a.test")
        );
        assert_eq!(
            get(&out, header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
            Some("true")
        );
        assert_eq!(get(&out, header::VARY), Some("Origin"));
        let out = cors.headers(&request(Some("http://evil.test"), None), false);
        assert_eq!(get(&out, header::ACCESS_CONTROL_ALLOW_ORIGIN), None);
        assert_eq!(get(&out, header::VARY), Some("Origin"));
    }

    #[test]
    fn preflights_get_methods_and_the_asked_headers() {
        let mut cors = Cors::new(CorsOrigin::Reflect);
        cors.max_age = Some(Duration::from_secs(600));
        let asks = request(Some("http://b.test"), Some("x-token,content-type"));
        let out = cors.headers(&asks, true);
        assert_eq!(
            get(&out, header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some("http://b.test")
        );
        assert_eq!(
            get(&out, header::ACCESS_CONTROL_ALLOW_METHODS),
            Some("GET,HEAD,PUT,PATCH,POST,DELETE")
        );
        assert_eq!(
            get(&out, header::ACCESS_CONTROL_ALLOW_HEADERS),
            Some("x-token,content-type")
        );
        assert_eq!(get(&out, header::ACCESS_CONTROL_MAX_AGE), Some("600"));
        cors.allowed_headers = Some(vec!["x-token".into()]);
        let out = cors.headers(&asks, true);
        assert_eq!(
            get(&out, header::ACCESS_CONTROL_ALLOW_HEADERS),
            Some("x-token")
        );
    }
}
