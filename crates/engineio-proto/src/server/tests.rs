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
        Ok(Route::Handshake(TransportKind::Polling))
    );
    assert_eq!(
        route(Method::Get, "EIO=4&transport=websocket", true),
        Ok(Route::Handshake(TransportKind::WebSocket))
    );
    assert_eq!(
        route(Method::Get, "t=Nx1&EIO=4&transport=polling&extra", false),
        Ok(Route::Handshake(TransportKind::Polling))
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
