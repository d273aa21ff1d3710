use super::*;
use crate::sid::CountingSidGenerator;

fn server() -> Server<CountingSidGenerator> {
    Server::new(ServerConfig::default(), CountingSidGenerator::default())
}

fn route(method: Method, query: &str, websocket: bool) -> Result<Route, RequestError> {
    server().route(&Request {
        method,
        query,
        websocket,
    })
}

#[test]
fn handshakes() {
    assert_eq!(
        route(Method::Get, "EIO=4&transport=polling", false),
        Ok(Route::Handshake(TransportKind::Polling, Dialect::default()))
    );
    assert_eq!(
        route(Method::Get, "EIO=4&transport=websocket", true),
        Ok(Route::Handshake(
            TransportKind::WebSocket,
            Dialect::default()
        ))
    );
    assert_eq!(
        route(Method::Get, "t=Nx1&EIO=4&transport=polling&extra", false),
        Ok(Route::Handshake(TransportKind::Polling, Dialect::default()))
    );
}

/// With `allow_eio3`, `EIO=3` (or any `EIO` but 4, as in Node) opens a v3
/// session; `b64` and `j` pick the polling variant.
#[test]
fn eio3_and_jsonp_handshakes() {
    let config = ServerConfig {
        allow_eio3: true,
        ..ServerConfig::default()
    };
    let server = Server::new(config, CountingSidGenerator::default());
    let route = |query: &str, websocket: bool| {
        server.route(&Request {
            method: Method::Get,
            query,
            websocket,
        })
    };
    let v3 = |binary_payloads, jsonp| Dialect {
        protocol: Protocol::V3,
        binary_payloads,
        jsonp,
    };
    assert_eq!(
        route("EIO=3&transport=polling", false),
        Ok(Route::Handshake(TransportKind::Polling, v3(true, None)))
    );
    assert_eq!(
        route("transport=polling&b64=1", false),
        Ok(Route::Handshake(TransportKind::Polling, v3(false, None)))
    );
    assert_eq!(
        route("EIO=3&transport=polling&b64=", false),
        Ok(Route::Handshake(TransportKind::Polling, v3(true, None)))
    );
    assert_eq!(
        route("EIO=3&transport=polling&b64=1&j=12", false),
        Ok(Route::Handshake(
            TransportKind::Polling,
            v3(false, Some(12))
        ))
    );
    assert_eq!(
        route("EIO=4&transport=polling&j=x3", false),
        Ok(Route::Handshake(
            TransportKind::Polling,
            Dialect {
                jsonp: Some(3),
                ..Dialect::default()
            }
        ))
    );
    assert_eq!(
        route("EIO=3&transport=websocket", true),
        Ok(Route::Handshake(TransportKind::WebSocket, v3(true, None)))
    );
    // A callback index that is no number.
    assert_eq!(
        route("EIO=3&transport=polling&j=", false),
        Err(RequestError::BadRequest)
    );
    assert_eq!(
        route("EIO=3&transport=polling&j=99999999999", false),
        Err(RequestError::BadRequest)
    );
}

#[test]
fn refusals_follow_nodes_order_and_codes() {
    use RequestError::*;
    let cases = [
        (Method::Get, "EIO=4", false, UnknownTransport),
        (Method::Get, "EIO=4&transport=abc", false, UnknownTransport),
        (Method::Get, "transport=abc", false, UnknownTransport),
        (
            Method::Get,
            "transport=polling",
            false,
            UnsupportedProtocolVersion,
        ),
        (
            Method::Get,
            "EIO=abc&transport=polling",
            false,
            UnsupportedProtocolVersion,
        ),
        (
            Method::Get,
            "EIO=3&transport=polling",
            false,
            UnsupportedProtocolVersion,
        ),
        (
            Method::Post,
            "EIO=4&transport=polling",
            false,
            BadHandshakeMethod,
        ),
        (
            Method::Other,
            "EIO=4&transport=polling",
            false,
            BadHandshakeMethod,
        ),
        (Method::Get, "EIO=4&transport=websocket", false, BadRequest),
        (Method::Get, "EIO=4&transport=polling", true, BadRequest),
        (
            Method::Get,
            "EIO=4&transport=polling&sid=a%20b",
            false,
            UnknownSid,
        ),
        (
            Method::Get,
            "EIO=4&transport=websocket&sid=abc",
            false,
            BadRequest,
        ),
        (
            Method::Other,
            "EIO=4&transport=polling&sid=abc",
            false,
            BadRequest,
        ),
    ];
    for (method, query, websocket, error) in cases {
        assert_eq!(
            route(method, query, websocket),
            Err(error),
            "{method:?} {query}"
        );
    }
}

#[test]
fn requests_for_a_session() {
    let sid = Sid::parse("abc").unwrap();
    assert_eq!(
        route(Method::Get, "EIO=4&transport=polling&sid=abc", false),
        Ok(Route::Poll(sid))
    );
    assert_eq!(
        route(Method::Post, "EIO=4&transport=polling&sid=abc", false),
        Ok(Route::Post(sid))
    );
    assert_eq!(
        route(Method::Get, "EIO=4&transport=websocket&sid=abc", true),
        Ok(Route::Upgrade(sid))
    );
    // Percent-encoding is decoded.
    assert_eq!(
        route(Method::Get, "EIO=4&transport=polling&sid=a%62c", false),
        Ok(Route::Poll(sid))
    );
}

#[test]
fn disabled_transports_are_unknown() {
    let config = ServerConfig {
        transports: Transports::WEBSOCKET,
        ..ServerConfig::default()
    };
    let server = Server::new(config, CountingSidGenerator::default());
    let polling = Request {
        method: Method::Get,
        query: "EIO=4&transport=polling",
        websocket: false,
    };
    assert_eq!(server.route(&polling), Err(RequestError::UnknownTransport));
}

#[test]
fn error_responses_are_nodes() {
    let response = RequestError::UnknownSid.response();
    assert_eq!(response.status, 400);
    assert_eq!(
        response.content_type.header_value(),
        Some("application/json")
    );
    assert_eq!(
        &response.body[..],
        br#"{"code":1,"message":"Session ID unknown"}"#
    );
    assert_eq!(RequestError::Forbidden.response().status, 403);
    for (error, code) in [
        (RequestError::UnknownTransport, 0),
        (RequestError::BadHandshakeMethod, 2),
        (RequestError::BadRequest, 3),
        (RequestError::UnsupportedProtocolVersion, 5),
    ] {
        assert_eq!(error.code(), code);
    }
}

#[test]
fn percent_decoding_is_total() {
    assert_eq!(percent_decode("a%2"), "a%2");
    assert_eq!(percent_decode("%"), "%");
    assert_eq!(percent_decode("%zz"), "%zz");
    assert_eq!(percent_decode("a+b%41"), "a bA");
    assert_eq!(percent_decode("%ff"), "\u{fffd}");
}
